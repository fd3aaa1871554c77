package audit

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// ReplayOptions select the records to replay.
type ReplayOptions struct {
	// SearchID limits the replay to one application; empty replays every application.
	SearchID string
	// Type limits the replay to one event type.
	Type string
	// Since and Until bound the records' time; zero means unbounded.
	Since, Until time.Time
	// Format is table, jsonl or csv.
	Format string
}

// Replay writes the selected records to out in stream order and returns how many it wrote.
// Each record's own hash and sequence are checked on the way: a record that fails is an
// error naming its sequence (audit verify checks the whole chain).
func Replay(ctx context.Context, js jetstream.JetStream, o ReplayOptions, out io.Writer) (int, error) {
	if o.Format == "" {
		o.Format = chain.FormatTable
	}
	w, err := chain.NewWriter(out, o.Format)
	if err != nil {
		return 0, err
	}
	subject := topology.SubjectAudit
	if o.SearchID != "" {
		subject = topology.AuditSubject(o.SearchID)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !o.Since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &o.Since
	}
	cons, err := js.OrderedConsumer(ctx, topology.StreamAudit, cfg)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	n := 0
	for pending := info.NumPending; pending > 0; {
		m, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			return n, fmt.Errorf("replay: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return n, fmt.Errorf("replay: %w", err)
		}
		pending = md.NumPending
		rec, err := chain.ParseRecord(m.Data())
		if err != nil {
			return n, fmt.Errorf("replay: record %d: %w", md.Sequence.Stream, err)
		}
		if err := chain.Verify(rec, rec.PrevHash, md.Sequence.Stream); err != nil {
			return n, fmt.Errorf("replay: %w", err)
		}
		if !o.Until.IsZero() && rec.Time.After(o.Until) {
			break
		}
		if o.Type != "" && rec.EventType != o.Type {
			continue
		}
		if err := w.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	return n, w.Flush()
}
