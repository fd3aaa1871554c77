package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// BenchmarkVerifyStream measures `audit verify` end to end: records read from a file-backed
// AUDIT stream on an embedded server, parsed, and checked. Run with
// go test -bench VerifyStream -run x ./services/audit
func BenchmarkVerifyStream(b *testing.B) {
	const n = 100_000
	srv := natstest.Start(b)
	_, js, err := bus.Connect(srv.ClientURL(), "bench", quiet, nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, js, topology.DefaultOptions()); err != nil {
		b.Fatal(err)
	}
	c, _ := chain.NewChain(0, chain.GenesisHash)
	payload := json.RawMessage(`{"search_id":"3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71","product_type":"loan","phone_hash":"` +
		"5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592" + `","phone_mask":"93******40","amount":500000.00,"term":24,"received_at":"2026-11-23T03:00:00Z"}`)
	var last jetstream.PubAckFuture
	for i := range n {
		rec, err := c.Append(chain.Record{Time: time.Now().UTC(), EventType: events.TypeApplicationReceived,
			SearchID: fmt.Sprintf("s-%d", i), Stage: "ingress", CorrelationID: "c", SourceSeq: uint64(i + 1), Payload: payload})
		if err != nil {
			b.Fatal(err)
		}
		data, _ := json.Marshal(rec)
		if last, err = js.PublishAsync(topology.AuditSubject(rec.SearchID), data); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-last.Ok():
	case err := <-last.Err():
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		rep, err := audit.Verify(ctx, js, audit.VerifyOptions{To: n})
		if err != nil || rep.Records != n {
			b.Fatalf("verify: %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "records/s")
}
