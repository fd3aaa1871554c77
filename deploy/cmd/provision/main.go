// Command provision creates (or updates) every JetStream stream, durable consumer and KV
// bucket loanflow uses, from contracts/topology, as the admin identity: the services then run
// with LOANFLOW_PROVISION=false as least-privilege users that cannot manage streams. It reads
// the same settings as the services (NATS_URL, NATS_USER/NATS_PASSWORD or NATS_CREDS, NATS_CA,
// LOANFLOW_NATS_REPLICAS and the retry settings, which must match the services'), retries
// while the cluster elects its leaders, and exits 0 once everything is declared.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/service"
)

func main() {
	var s bus.Settings
	os.Exit(service.Main("provision", &s, func(ctx context.Context, log *slog.Logger) error {
		return provision(ctx, s, log, bus.StartupTimeout)
	}))
}

// provision connects as the admin and declares the topology, retrying until within.
func provision(ctx context.Context, s bus.Settings, log *slog.Logger, within time.Duration) error {
	opts, err := s.Options()
	if err != nil {
		return err
	}
	nc, js, err := bus.Connect(s.URL, "provision", log, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	deadline := time.Now().Add(within)
	wait := 250 * time.Millisecond
	for {
		err := bus.EnsureTopology(ctx, js, s)
		if err == nil {
			log.Info("provisioned", "replicas", s.Topology().Replicas, "url", nc.ConnectedUrlRedacted())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("provision: %w", err)
		}
		log.Warn("provisioning failed, retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}
