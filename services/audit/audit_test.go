package audit_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startAudit runs the audit service against a fresh server and returns a JetStream handle.
func startAudit(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- audit.Run(ctx, audit.Config{Bus: natstest.Settings(srv.ClientURL()), PhoneKey: "audit-test-key-0123456789", Logger: quiet})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("audit.Run: %v", err)
		}
	})
	_, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func publish(t *testing.T, js jetstream.JetStream, typ, searchID string, payload any) {
	t.Helper()
	msg, err := bus.NewEvent(typ, searchID, bus.Trace{CorrelationID: "corr-" + searchID}, payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, 2*time.Second).Publish(typ, msg); err != nil {
		t.Fatal(err)
	}
}

func auditCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), topology.StreamAudit)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestEveryEventRecordedOnceChainedAndReplayable(t *testing.T) {
	js := startAudit(t)
	publish(t, js, events.TypeApplicationReceived, "app-1", events.ApplicationReceived{SearchID: "app-1", ProductType: "loan", PhoneHash: strings.Repeat("ab", 32), PhoneMask: "93******40"})
	publish(t, js, events.TypeApplicationReceived, "app-2", events.ApplicationReceived{SearchID: "app-2", ProductType: "credit_card"})
	publish(t, js, events.TypeApplicationScored, "app-1", events.ApplicationScored{SearchID: "app-1", Outcome: events.OutcomeApproved, ReasonCodes: []string{"UNKNOWN_CLIENT"}, PolicyVersion: "p1"})
	publish(t, js, events.TypeDecisionMade, "app-1", events.DecisionMade{SearchID: "app-1", Decision: "has_approve"})
	// An event that is not JSON and one that carries a phone in clear, which must not
	// survive into the audit.
	raw := message.NewMessage("raw-1", []byte("not json 9330445040"))
	raw.Metadata.Set(events.HeaderSearchID, "app-3")
	if err := bus.NewPublisher(js, time.Second).Publish(events.TypeApplicationReceived, raw); err != nil {
		t.Fatal(err)
	}
	publish(t, js, events.TypeApplicationFailed, "app-3", map[string]any{"search_id": "app-3", "stage": "scoring", "phone_number": "9330445040"})

	natstest.WaitFor(t, "six audit records", func() bool { return auditCount(t, js) == 6 })

	// The whole chain verifies from the genesis.
	s, _ := js.Stream(context.Background(), topology.StreamAudit)
	v := chain.NewVerifier(0, chain.GenesisHash)
	for seq := uint64(1); seq <= 6; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data), "9330445040") {
			t.Errorf("record %d holds the clear phone: %s", seq, m.Data)
		}
		rec, err := chain.ParseRecord(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(rec); err != nil {
			t.Fatalf("chain breaks: %v", err)
		}
	}

	var out bytes.Buffer
	n, err := audit.Replay(context.Background(), js, audit.ReplayOptions{SearchID: "app-1", Format: "jsonl"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if n != 3 || len(lines) != 3 {
		t.Fatalf("replay of app-1: %d records:\n%s", n, out.String())
	}
	for i, want := range []string{events.TypeApplicationReceived, events.TypeApplicationScored, events.TypeDecisionMade} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("record %d is not %s: %s", i, want, lines[i])
		}
	}
	out.Reset()
	if _, err := audit.Replay(context.Background(), js, audit.ReplayOptions{SearchID: "app-1"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "UNKNOWN_CLIENT") || !strings.Contains(out.String(), "p1") {
		t.Errorf("table replay lacks reason codes and policy version:\n%s", out.String())
	}
	if n, err := audit.Replay(context.Background(), js, audit.ReplayOptions{SearchID: "nobody"}, io.Discard); err != nil || n != 0 {
		t.Errorf("replay of an unknown application: %d, %v", n, err)
	}
}

func TestRestartContinuesTheChain(t *testing.T) {
	srv := natstest.Start(t)
	run := func(events int) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- audit.Run(ctx, audit.Config{Bus: natstest.Settings(srv.ClientURL()), PhoneKey: "audit-test-key-0123456789", Logger: quiet})
		}()
		_, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
		if err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, "audit records", func() bool { return auditCount(t, js) == uint64(events) })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	_, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(context.Background(), js, topology.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	publish(t, js, events.TypeApplicationReceived, "r-1", events.ApplicationReceived{SearchID: "r-1"})
	run(1)
	publish(t, js, events.TypeApplicationReceived, "r-2", events.ApplicationReceived{SearchID: "r-2"})
	run(2)
	s, _ := js.Stream(context.Background(), topology.StreamAudit)
	v := chain.NewVerifier(0, chain.GenesisHash)
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := chain.ParseRecord(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(rec); err != nil {
			t.Fatalf("chain breaks across the restart: %v", err)
		}
	}
}
