// Command baseline serves the bus's own limit (see package baseline) until SIGINT or SIGTERM.
// The benchmark builds and starts it as a process of its own, like the all-in-one:
//
//	baseline -http 127.0.0.1:0 -data /tmp/baseline -token secret
//
// It logs one JSON line "baseline started" with the address it listens on.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/loanflow/loanflow/bench/baseline"
)

func main() {
	var cfg baseline.Config
	flag.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:0", "endpoint address")
	flag.StringVar(&cfg.DataDir, "data", "", "JetStream store directory (required)")
	flag.StringVar(&cfg.Token, "token", "", "bearer token (required)")
	flag.DurationVar(&cfg.Budget, "budget", 250*time.Millisecond, "wait for the result before answering pending")
	flag.IntVar(&cfg.Concurrency, "concurrency", 32, "messages the worker handles at once")
	flag.Parse()
	if cfg.DataDir == "" || cfg.Token == "" {
		fmt.Fprintln(os.Stderr, "baseline: -data and -token are required")
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := baseline.Start(ctx, cfg)
	if err != nil {
		cfg.Logger.Error("baseline", "err", err)
		os.Exit(1)
	}
	if err := s.Wait(); err != nil {
		cfg.Logger.Error("baseline", "err", err)
		os.Exit(1)
	}
}
