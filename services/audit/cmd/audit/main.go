// Command audit records every loan.> event into the AUDIT stream (no arguments, or "serve"),
// and replays it for compliance ("replay").
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/services/audit"
)

const usage = `usage:
  audit [serve]                 record every loan.> event (settings from the environment)
  audit replay [flags]          print audit records in order
    --search-id ID              one application's history
    --type TYPE                 one event type, e.g. loan.application.scored.v1
    --since, --until RFC3339    a time window
    --format table|jsonl|csv    output format (default table)
  NATS_URL names the server (default nats://127.0.0.1:4222).
`

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "replay" {
		os.Exit(replay(args[1:], os.Stdout, os.Stderr))
	}
	if len(args) > 0 && args[0] != "serve" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var cfg audit.Config
	os.Exit(service.Main("audit", &cfg, func(ctx context.Context, log *slog.Logger) error {
		cfg.Logger = log
		return audit.Run(ctx, cfg)
	}))
}

func replay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var o audit.ReplayOptions
	var since, until string
	fs.StringVar(&o.SearchID, "search-id", "", "one application's search_id")
	fs.StringVar(&o.Type, "type", "", "one event type")
	fs.StringVar(&since, "since", "", "records at or after this time (RFC 3339)")
	fs.StringVar(&until, "until", "", "records at or before this time (RFC 3339)")
	fs.StringVar(&o.Format, "format", "table", "table, jsonl or csv")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, t := range []struct {
		in  string
		out *time.Time
	}{{since, &o.Since}, {until, &o.Until}} {
		if t.in == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.in)
		if err != nil {
			fmt.Fprintf(stderr, "audit replay: %q is not an RFC 3339 time\n", t.in)
			return 2
		}
		*t.out = v
	}
	var s bus.Settings
	if err := env.Parse(&s); err != nil {
		fmt.Fprintf(stderr, "audit replay: %v\n", err)
		return 2
	}
	nc, js, err := bus.Connect(s.URL, "audit-replay", slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "audit replay: %v\n", err)
		return 1
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := audit.Replay(ctx, js, o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "audit replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "%d records\n", n)
	return 0
}
