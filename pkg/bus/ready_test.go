package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/embeddednats"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// TestReadyCheck runs the readiness check of a service reading the scoring consumer, with the
// AUDIT stream and the clients bucket, against a real server: ready, then not ready when its
// consumer is deleted, when a stream or bucket it names is missing, and when NATS is down.
func TestReadyCheck(t *testing.T) {
	srv := natstest.Start(t)
	s := natstest.Settings(srv.ClientURL())
	nc, admin, err := bus.Connect(srv.ClientURL(), "admin", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	if err := bus.EnsureTopology(ctx, admin, s); err != nil {
		t.Fatal(err)
	}
	off := false
	s.Provision = &off
	conn, err := bus.Open(ctx, s, "scoring", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := &bus.Health{}
	clients := "KV_" + topology.ClientsBucket(s.Topology()).Bucket
	ready := bus.ReadyCheck(conn.NC, conn.JS, h, []string{topology.StreamLoans}, topology.StreamAudit, clients)
	check := func() error {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return ready(c)
	}

	// Before any subscription, nothing proves LOANS: not ready, and without probing LOANS by a
	// direct get, which the service's user may not do (its only read of LOANS is its consumer).
	probes, err := nc.SubscribeSync("$JS.API.DIRECT.GET." + topology.StreamLoans + ".>")
	if err != nil {
		t.Fatal(err)
	}
	probes2, err := nc.SubscribeSync("$JS.API.DIRECT.GET." + topology.StreamLoans)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := check(); err == nil {
		t.Error("ready before the service's consumer is bound")
	}
	if err := conn.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*nats.Subscription{probes, probes2} {
		if m, err := p.NextMsg(200 * time.Millisecond); err == nil {
			t.Errorf("the check sent %s: a direct get on a stream the service reads only through its consumer", m.Subject)
		}
		_ = p.Unsubscribe()
	}
	sub := bus.NewSubscriber(conn.JS, bus.SubscriberConfig{Stream: topology.StreamLoans, Health: h, Logger: quiet, HealthInterval: 100 * time.Millisecond})
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	msgs, err := sub.Subscribe(subCtx, topology.ConsumerScoring)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range msgs {
			m.Ack()
		}
	}()
	defer func() { _ = sub.Close() }()
	natstest.WaitFor(t, "ready", func() bool { return check() == nil })

	// The consumer deleted under the service.
	if err := admin.DeleteConsumer(ctx, topology.StreamLoans, topology.ConsumerScoring); err != nil {
		t.Fatal(err)
	}
	if err := check(); err == nil {
		t.Error("ready with its consumer deleted")
	}
	if err := bus.EnsureConsumer(ctx, admin, topology.ConsumerScoring, s.Retry()); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "ready again with the consumer back", func() bool { return check() == nil })

	// A stream it names missing (AUDIT has no consumer of the service: a direct get proves it).
	if err := admin.DeleteStream(ctx, topology.StreamAudit); err != nil {
		t.Fatal(err)
	}
	if err := check(); err == nil {
		t.Error("ready with the AUDIT stream missing")
	}
	if err := bus.EnsureStreams(ctx, admin, s.Topology()); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "ready again with AUDIT back", func() bool { return check() == nil })

	// A bucket it names missing.
	if err := admin.DeleteKeyValue(ctx, topology.ClientsBucket(s.Topology()).Bucket); err != nil {
		t.Fatal(err)
	}
	if err := check(); err == nil {
		t.Error("ready with the clients bucket missing")
	}
	if _, err := bus.EnsureBucket(ctx, admin, topology.ClientsBucket(s.Topology())); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "ready again with the bucket back", func() bool { return check() == nil })

	// NATS down.
	embeddednats.Stop(srv)
	natstest.WaitFor(t, "not ready with NATS down", func() bool { return check() != nil })
}
