package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/audit"
)

// TestWriterCountsItsRedeliveries hands the audit two events that were delivered once
// already (fetched and nacked by another reader) and one that was not: the writer, which reads
// its consumer without bus.Run, counts the two redeliveries on the stages' counter.
func TestWriterCountsItsRedeliveries(t *testing.T) {
	srv := natstest.Start(t)
	settings := natstest.Settings(srv.ClientURL())
	_, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, js, settings.Topology()); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureConsumer(ctx, js, topology.ConsumerAudit, settings.AuditRetry()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"redo-1", "redo-2"} {
		publish(t, js, events.TypeApplicationReceived, id, events.ApplicationReceived{SearchID: id})
	}
	cons, err := js.Consumer(ctx, topology.StreamLoans, topology.ConsumerAudit)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fetched := 0
	for m := range b.Messages() {
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
		fetched++
	}
	if fetched != 2 {
		t.Fatalf("fetched %d events, want 2", fetched)
	}

	ops := admin.NewOps()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- audit.Run(runCtx, audit.Config{Bus: settings, PhoneKey: "audit-test-key-0123456789", SigningKey: signingKey,
			CheckpointInterval: 50 * time.Millisecond, Batch: 64, Logger: quiet, Ops: ops})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("audit.Run: %v", err)
		}
	}()
	natstest.WaitFor(t, "the redelivered events recorded", func() bool { return auditCount(t, js) == 2 })
	publish(t, js, events.TypeApplicationReceived, "first-1", events.ApplicationReceived{SearchID: "first-1"})
	natstest.WaitFor(t, "the new event recorded", func() bool { return auditCount(t, js) == 3 })

	want := `
# HELP loanflow_consumer_redeliveries_total Events delivered again to a consumer (a nak, an ack timeout, a restart).
# TYPE loanflow_consumer_redeliveries_total counter
loanflow_consumer_redeliveries_total{consumer="audit"} 2
`
	if err := testutil.GatherAndCompare(ops.Registry, strings.NewReader(want), "loanflow_consumer_redeliveries_total"); err != nil {
		t.Error(err)
	}
}
