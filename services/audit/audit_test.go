package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// signingKey is a fixed test seed (32 bytes of 7), base64.
var signingKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// startAudit runs the audit service against a fresh server and returns a JetStream handle.
func startAudit(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- audit.Run(ctx, audit.Config{Bus: natstest.Settings(srv.ClientURL()), PhoneKey: "audit-test-key-0123456789", SigningKey: signingKey, CheckpointInterval: 50 * time.Millisecond, Batch: 64, Logger: quiet})
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
			done <- audit.Run(ctx, audit.Config{Bus: natstest.Settings(srv.ClientURL()), PhoneKey: "audit-test-key-0123456789", SigningKey: signingKey, CheckpointInterval: 50 * time.Millisecond, Batch: 64, Logger: quiet})
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

// runAudit runs the audit service on the server at url until the returned stop is called.
func runAudit(t *testing.T, url string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- audit.Run(ctx, audit.Config{Bus: natstest.Settings(url), PhoneKey: "audit-test-key-0123456789",
			SigningKey: signingKey, CheckpointInterval: 50 * time.Millisecond, Batch: 64, Logger: quiet})
	}()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("audit.Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func publicKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := chain.ParseSigningKey(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

// recordEvents publishes n received events and waits until the audit has recorded them and
// checkpointed the head.
func recordEvents(t *testing.T, js jetstream.JetStream, prefix string, n int) {
	t.Helper()
	before := auditCount(t, js)
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		publish(t, js, events.TypeApplicationReceived, id, events.ApplicationReceived{SearchID: id, ProductType: "loan"})
	}
	natstest.WaitFor(t, "records", func() bool { return auditCount(t, js) == before+uint64(n) })
	natstest.WaitFor(t, "checkpoint", func() bool {
		rep, err := audit.Verify(context.Background(), js, audit.VerifyOptions{PublicKey: publicKey(t)})
		return err == nil && rep.Checkpoint != nil && rep.Checkpoint.Seq == before+uint64(n)
	})
}

func TestVerifyCatchesAForgedRecordAtItsSequence(t *testing.T) {
	srv := natstest.Start(t)
	runAudit(t, srv.ClientURL())
	_, js, _ := bus.Connect(srv.ClientURL(), "test", quiet)
	recordEvents(t, js, "v", 5)

	// A forger appends a record of their own on the audit subject: well-formed, but linked to
	// a made-up predecessor.
	forged := chain.Record{Seq: 6, Time: time.Now().UTC(), EventType: events.TypeDecisionMade, SearchID: "v-1",
		Stage: "offers", SourceSeq: 99, Payload: json.RawMessage(`{"decision":"has_approve"}`)}
	if err := chain.Seal(&forged, strings.Repeat("f", 64)); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(forged)
	if _, err := js.Publish(context.Background(), topology.AuditSubject("v-1"), b); err != nil {
		t.Fatal(err)
	}
	_, err := audit.Verify(context.Background(), js, audit.VerifyOptions{PublicKey: publicKey(t)})
	var br *chain.BreakError
	if !errors.As(err, &br) || br.Seq != 6 || br.Reason != chain.ReasonPrevHash {
		t.Fatalf("Verify = %v, want a prev-hash break at 6", err)
	}
	// Records up to the forgery still verify as a range.
	if rep, err := audit.Verify(context.Background(), js, audit.VerifyOptions{To: 5}); err != nil || rep.Records != 5 {
		t.Errorf("range 1..5: %+v, %v", rep, err)
	}
}

func TestVerifyCatchesATruncatedTail(t *testing.T) {
	srv := natstest.Start(t)
	stop := runAudit(t, srv.ClientURL())
	_, js, _ := bus.Connect(srv.ClientURL(), "test", quiet)
	recordEvents(t, js, "t", 6)
	stop()

	// Someone with admin rights deletes the stream (deny_delete does not stop that) and puts
	// back all but the last two records: what remains is a perfectly consistent chain.
	ctx := context.Background()
	s, _ := js.Stream(ctx, topology.StreamAudit)
	var kept [][]byte
	var subjects []string
	for seq := uint64(1); seq <= 4; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		kept, subjects = append(kept, m.Data), append(subjects, m.Subject)
	}
	if err := js.DeleteStream(ctx, topology.StreamAudit); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, topology.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	for i, data := range kept {
		if _, err := js.Publish(ctx, subjects[i], data); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := audit.Verify(ctx, js, audit.VerifyOptions{To: 4}); err != nil || rep.Records != 4 {
		t.Fatalf("the remaining chain should verify on its own: %+v, %v", rep, err)
	}
	_, err := audit.Verify(ctx, js, audit.VerifyOptions{PublicKey: publicKey(t)})
	if !errors.Is(err, audit.ErrTruncated) {
		t.Fatalf("Verify = %v, want ErrTruncated", err)
	}
}

func TestRedeliveredEventIsRecordedOnce(t *testing.T) {
	// The writer remembers the sources of its latest 2×MaxAckPending records; events further
	// back are looked up among their application's records.
	recentWindow := 2 * natstest.Settings("").AuditRetry().MaxAckPending
	for _, tc := range []struct {
		name   string
		events int
	}{
		{"remembered", 3},
		{"older than the writer remembers", recentWindow + 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			runAudit(t, srv.ClientURL())
			_, js, _ := bus.Connect(srv.ClientURL(), "test", quiet)
			ctx := context.Background()
			recordEvents(t, js, "r", tc.events)

			// Shrink JetStream's own duplicate window so that only the audit's own bookkeeping
			// can recognise the redeliveries, then make the consumer deliver everything again.
			s, _ := js.Stream(ctx, topology.StreamAudit)
			cfg := s.CachedInfo().Config
			cfg.Duplicates = 200 * time.Millisecond
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if err := js.DeleteConsumer(ctx, topology.StreamLoans, topology.ConsumerAudit); err != nil {
				t.Fatal(err)
			}
			if err := bus.EnsureConsumer(ctx, js, topology.ConsumerAudit, natstest.Settings("").AuditRetry()); err != nil {
				t.Fatal(err)
			}
			publish(t, js, events.TypeApplicationReceived, "r-new", events.ApplicationReceived{SearchID: "r-new"})
			want := uint64(tc.events + 1)
			natstest.WaitFor(t, "the new event", func() bool { return auditCount(t, js) >= want })
			time.Sleep(300 * time.Millisecond) // room for wrong duplicates to show
			if got := auditCount(t, js); got != want {
				t.Errorf("audit records = %d, want %d: redelivered events were recorded again", got, want)
			}
			if _, err := audit.Verify(ctx, js, audit.VerifyOptions{PublicKey: publicKey(t)}); err != nil {
				t.Errorf("chain: %v", err)
			}
		})
	}
}

func TestExportWritesRecordsAndManifest(t *testing.T) {
	srv := natstest.Start(t)
	runAudit(t, srv.ClientURL())
	_, js, _ := bus.Connect(srv.ClientURL(), "test", quiet)
	recordEvents(t, js, "e", 4)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	m, err := audit.Export(context.Background(), js, 0, 0, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	last, err := chain.ParseRecord([]byte(lines[len(lines)-1]))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if m.Count != 4 || len(lines) != 4 || m.FirstSeq != 1 || m.LastSeq != 4 || m.FinalHash != last.Hash || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("manifest %+v for %d lines", m, len(lines))
	}
	if _, err := os.Stat(path + ".manifest.json"); err != nil {
		t.Errorf("no manifest file: %v", err)
	}
}

func TestReplayByPhone(t *testing.T) {
	srv := natstest.Start(t)
	runAudit(t, srv.ClientURL())
	_, js, _ := bus.Connect(srv.ClientURL(), "test", quiet)
	h, _ := pseudonym.New([]byte("audit-test-key-0123456789"))
	for i, phone := range []string{"9330445040", "9001234567", "9330445040"} {
		id := fmt.Sprintf("p-%d", i)
		publish(t, js, events.TypeApplicationReceived, id, events.ApplicationReceived{SearchID: id, PhoneHash: h.Phone(phone), PhoneMask: pseudonym.Mask(phone)})
		publish(t, js, events.TypeApplicationScored, id, events.ApplicationScored{SearchID: id, Outcome: events.OutcomeApproved})
	}
	natstest.WaitFor(t, "records", func() bool { return auditCount(t, js) == 6 })
	var out bytes.Buffer
	n, err := audit.Replay(context.Background(), js, audit.ReplayOptions{PhoneHash: h.Phone("9330445040"), Format: "csv"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || strings.Contains(out.String(), "p-1") || !strings.Contains(out.String(), "p-0") || !strings.Contains(out.String(), "p-2") {
		t.Errorf("replay by phone: %d records\n%s", n, out.String())
	}
	if strings.Contains(out.String(), "9330445040") {
		t.Error("replay prints the phone in clear")
	}
}
