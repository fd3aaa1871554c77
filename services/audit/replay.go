package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/services/audit/internal/chain"
)

// ReplayOptions select the records to replay.
type ReplayOptions struct {
	// SearchID limits the replay to one application; empty replays every application.
	SearchID string
	// PhoneHash limits the replay to the applications of one client: the keyed hash of the
	// phone number (the number itself is never stored, so it is looked up by its hash).
	PhoneHash string
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
	subjects := []string{topology.SubjectAudit}
	if o.SearchID != "" {
		subjects = []string{topology.AuditSubject(o.SearchID)}
	}
	if o.PhoneHash != "" {
		ids, err := searchIDsOf(ctx, js, o.PhoneHash)
		if err != nil {
			return 0, err
		}
		if len(ids) == 0 {
			return 0, w.Flush()
		}
		subjects = subjects[:0]
		for _, id := range ids {
			if o.SearchID == "" || o.SearchID == id {
				subjects = append(subjects, topology.AuditSubject(id))
			}
		}
		if len(subjects) == 0 {
			return 0, w.Flush()
		}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
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

// searchIDsOf finds the applications whose received event carries phoneHash, scanning the
// received records in order.
func searchIDsOf(ctx context.Context, js jetstream.JetStream, phoneHash string) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	_, err := Replay(ctx, js, ReplayOptions{Type: events.TypeApplicationReceived, Format: chain.FormatJSONL}, &lineWriter{each: func(line []byte) error {
		var rec struct {
			SearchID string `json:"search_id"`
			Payload  struct {
				PhoneHash string `json:"phone_hash"`
			} `json:"payload"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Payload.PhoneHash == phoneHash && rec.SearchID != "" && !seen[rec.SearchID] {
			seen[rec.SearchID] = true
			ids = append(ids, rec.SearchID)
		}
		return nil
	}})
	return ids, err
}

// lineWriter hands each complete line written to it to each: the renderer buffers, so one
// Write may hold several lines or part of one.
type lineWriter struct {
	each func(line []byte) error
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := w.each(w.buf[:i]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
}
