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

// auditReader reads the AUDIT stream with short-lived ordered consumers (nothing durable is
// left behind, nothing is acked, no consumer info is asked): an application's records by their subject, and the
// applications of one phone hash by scanning the window's received and referred records.
type auditReader struct {
	js jetstream.JetStream
	// window bounds how far back a phone search scans.
	window  time.Duration
	timeout time.Duration
	limit   int
}

// timeline returns one application's records in chain order.
func (a *auditReader) timeline(ctx context.Context, searchID string) ([]auditRecord, error) {
	var out []auditRecord
	err := a.scan(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.AuditSubject(searchID)}, DeliverPolicy: jetstream.DeliverAllPolicy,
	}, func(r auditRecord) bool {
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
	err := a.scan(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.SubjectAudit},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	}, func(r auditRecord) bool {
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

// scan hands each record the consumer delivers to each until it returns false or the
// consumer has delivered everything the stream held when the scan began.
func (a *auditReader) scan(ctx context.Context, cfg jetstream.OrderedConsumerConfig, each func(auditRecord) bool) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	cons, err := a.js.OrderedConsumer(ctx, topology.StreamAudit, cfg)
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	// What the consumer's creation answered, not a CONSUMER.INFO request: the console's NATS
	// user may create, pull and delete consumers on AUDIT, nothing more (deploy/nats/users.conf).
	info := cons.CachedInfo()
	if info == nil {
		return errors.New("read audit: the consumer was not created")
	}
	for pending := info.NumPending; pending > 0; {
		msgs, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchContext(ctx))
		if err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		n := 0
		for m := range msgs.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read audit: %w", err)
			}
			pending = md.NumPending
			var r auditRecord
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				return fmt.Errorf("audit record %d does not decode: %w", md.Sequence.Stream, err)
			}
			if !each(r) {
				return nil
			}
		}
		if err := msgs.Error(); err != nil {
			return fmt.Errorf("read audit: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("read audit: %w", ctx.Err())
		}
	}
	return nil
}
