// Package service is the shared body of every loanflow main: read the configuration from the
// environment, build the logger, run until SIGINT or SIGTERM, and turn the outcome into an
// exit status. Mains stay a few lines long; the services stay testable as Run(ctx, cfg).
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/loanflow/loanflow/pkg/logging"
)

// Main parses the environment into cfg, then calls run with a context cancelled by SIGINT or
// SIGTERM and the process logger. It returns the exit status: 0 on a clean stop, 1 on an error
// (logged), 2 on bad configuration.
func Main(name string, cfg any, run func(ctx context.Context, log *slog.Logger) error) int {
	var ls logging.Settings
	if err := env.Parse(&ls); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	log, err := logging.New(os.Stderr, ls)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	log = log.With("process", name)
	if err := env.Parse(cfg); err != nil {
		log.Error("configuration", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
