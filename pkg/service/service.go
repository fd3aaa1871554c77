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

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/logging"
	"github.com/loanflow/loanflow/pkg/tracing"
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

// Serve is Main for a long-running service: it also serves the admin endpoints (/metrics,
// /healthz, /readyz, pprof behind LOANFLOW_PPROF) on LOANFLOW_ADMIN_ADDR, apart from any public
// port, hands run the registry and readiness checks to fill, and exports traces when
// OTEL_EXPORTER_OTLP_ENDPOINT is set.
func Serve(name string, cfg any, run func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error) int {
	var as admin.Settings
	if err := env.Parse(&as); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	ln, err := admin.Listen(as)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	ops := admin.NewOps()
	return Main(name, cfg, func(ctx context.Context, log *slog.Logger) error {
		flush, err := tracing.Setup(ctx, name)
		if err != nil {
			return err
		}
		defer func() {
			if err := flush(context.WithoutCancel(ctx)); err != nil {
				log.Warn("trace export at exit", "err", err)
			}
		}()
		adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
		adminDone := make(chan error, 1)
		go func() { adminDone <- admin.Serve(adminCtx, ln, ops, as.Pprof, log) }()
		err = run(ctx, log, ops)
		// The admin listener outlives the service's own shutdown so that probes and a last
		// scrape see it drain.
		stopAdmin()
		if adminErr := <-adminDone; err == nil {
			err = adminErr
		}
		return err
	})
}

// Reloads returns the channel a reload loop reads: ch itself, or, when ch is nil, a new channel
// that SIGHUP is registered on before Reloads returns. A service calls it before it starts
// consuming: from then on a SIGHUP is a reload (one kept pending until the loop runs), where
// before it was the default action that ends the process. stop unregisters the signal.
func Reloads(ch <-chan os.Signal) (reloads <-chan os.Signal, stop func()) {
	if ch != nil {
		return ch, func() {}
	}
	// One slot: signals that arrive while a reload is pending or running are one more reload,
	// and the file is read when it runs, so nothing is missed by dropping the extras.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// ReloadOn calls reload for every signal on ch until ctx ends; a nil ch means SIGHUP, the
// operator's "read your configuration again", registered when ReloadOn starts (pass the
// channel from Reloads to have it registered earlier). reload keeps what it cannot load as it
// was.
func ReloadOn(ctx context.Context, ch <-chan os.Signal, reload func()) {
	ch, stop := Reloads(ch)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			reload()
		}
	}
}
