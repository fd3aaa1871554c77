package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
)

// auditRecord is the part of an AUDIT stream record the console shows. It is the console's
// own copy of the audit's JSON shape (services/audit/internal/chain.Record): no service
// imports another. Unknown fields are ignored.
type auditRecord struct {
	Seq           uint64          `json:"seq"`
	Time          time.Time       `json:"time"`
	EventType     string          `json:"event_type"`
	SearchID      string          `json:"search_id"`
	Stage         string          `json:"stage"`
	CorrelationID string          `json:"correlation_id"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
}

// auditReader reads the AUDIT stream with batched direct gets ($JS.API.DIRECT.GET.AUDIT): no
// consumer is created, nothing is acked, nothing is left behind, and the console's NATS user
// needs no consumer permission on AUDIT at all (deploy/nats/users.conf). An application's
// records are read by their subject, the applications of one phone hash by scanning the
// window's records.
type auditReader struct {
	js jetstream.JetStream
	// window bounds how far back a phone search scans.
	window  time.Duration
	timeout time.Duration
	limit   int
}

// auditBatch is how many records one direct get answers with.
const auditBatch = 256

// timeline returns one application's records in chain order.
func (a *auditReader) timeline(ctx context.Context, searchID string) ([]auditRecord, error) {
	var out []auditRecord
	err := a.scan(ctx, bus.DirectRequest{NextFor: topology.AuditSubject(searchID)}, func(r auditRecord) bool {
		out = append(out, r)
		return len(out) < a.limit
	})
	return out, err
}

// phoneHit is one application of the phone searched for.
type phoneHit struct {
	SearchID    string
	ProductType string
	PhoneMask   string
	Time        time.Time
}

// byPhone returns the applications whose received or referred event carries phoneHash, in
// stream order, from the last window.
func (a *auditReader) byPhone(ctx context.Context, phoneHash string, now time.Time) ([]phoneHit, error) {
	since := now.Add(-a.window)
	var hits []phoneHit
	seen := map[string]bool{}
	err := a.scan(ctx, bus.DirectRequest{NextFor: topology.SubjectAudit, StartTime: &since}, func(r auditRecord) bool {
		if r.EventType != events.TypeApplicationReceived && r.EventType != events.TypeApplicationReferred {
			return true
		}
		var p struct {
			PhoneHash   string `json:"phone_hash"`
			PhoneMask   string `json:"phone_mask"`
			ProductType string `json:"product_type"`
		}
		if json.Unmarshal(r.Payload, &p) != nil || p.PhoneHash != phoneHash || seen[r.SearchID] {
			return true
		}
		seen[r.SearchID] = true
		hits = append(hits, phoneHit{SearchID: r.SearchID, ProductType: p.ProductType, PhoneMask: p.PhoneMask, Time: r.Time})
		return len(hits) < a.limit
	})
	return hits, err
}

// scan hands each record req selects to each, in stream order, batch after batch, until each
// returns false or a batch reaches the stream's end.
func (a *auditReader) scan(ctx context.Context, req bus.DirectRequest, each func(auditRecord) bool) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req.Batch = auditBatch
	for {
		var (
			last      uint64
			stopped   bool
			decodeErr error
		)
		pending, err := bus.DirectBatch(ctx, a.js.Conn(), topology.StreamAudit, req, func(m *jetstream.RawStreamMsg) bool {
			last = m.Sequence
			var r auditRecord
			if err := json.Unmarshal(m.Data, &r); err != nil {
				decodeErr = fmt.Errorf("audit record %d does not decode: %w", m.Sequence, err)
				return false
			}
			stopped = !each(r)
			return !stopped
		})
		switch {
		case decodeErr != nil:
			return decodeErr
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil // nothing (more) to read
		case err != nil:
			return fmt.Errorf("read audit: %w", err)
		case stopped || pending == 0 || last == 0:
			return nil
		}
		// The next batch goes on after the last record read (by sequence, not time).
		req = bus.DirectRequest{Seq: last + 1, NextFor: req.NextFor, Batch: auditBatch}
	}
}
