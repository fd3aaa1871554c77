package console

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/services/console/internal/stats"
)

// feed keeps the dashboard's last hour: it reads the AUDIT stream's records from an hour ago
// on, in batched direct gets, and folds the pipeline events they hold into the aggregator;
// caught up, it asks again every feedPoll. It reads AUDIT, not LOANS, and no consumer: the
// console's NATS user may only direct-get AUDIT (deploy/nats/users.conf). AUDIT holds every
// loan.> event in LOANS order, so the figures are the same, only later by the audit's batch
// (up to half a second when the audit keeps up) and feedPoll. Times come from the events
// themselves (received_at, decided_at, failed_at), not from when they were recorded or read.
type feed struct {
	js  jetstream.JetStream
	log *slog.Logger

	mu   sync.Mutex
	agg  *stats.Aggregator
	last time.Time // the AUDIT stream time of the last record read
}

// feedPoll is how often a caught-up feed asks AUDIT for new records.
const feedPoll = 250 * time.Millisecond

func newFeed(js jetstream.JetStream, syncBudget time.Duration, log *slog.Logger) *feed {
	return &feed{js: js, log: log, agg: stats.New(syncBudget)}
}

// run reads records until ctx ends. The first request starts at the window's beginning by
// time; each next one after the last record read, by sequence.
func (f *feed) run(ctx context.Context) {
	var next uint64 // the AUDIT sequence to read from; 0: by time
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for ctx.Err() == nil {
		// The audit's subjects are per application, not per event type: every record is read
		// and add picks the events by the record's event_type.
		req := bus.DirectRequest{NextFor: topology.SubjectAudit, Batch: auditBatch, Seq: next}
		if next == 0 {
			since := time.Now().Add(-stats.Window)
			req.StartTime = &since
		}
		pending, err := bus.DirectBatch(ctx, f.js.Conn(), topology.StreamAudit, req, func(m *jetstream.RawStreamMsg) bool {
			f.add(m.Data, m.Time)
			next = m.Sequence + 1
			return true
		})
		wait := time.Duration(0)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && pending == 0):
			wait = feedPoll // caught up
		case err != nil:
			if ctx.Err() == nil {
				f.log.Warn("dashboard feed", "err", err)
			}
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			f.mu.Lock()
			f.agg.Prune(time.Now())
			f.mu.Unlock()
		case <-time.After(wait):
		}
	}
}

// add folds in the event of one audit record: its event_type and the few fields read here of
// its payload (the event's body as LOANS held it but pseudonymised, which leaves these fields
// as they were). One pass decodes both: this runs for every record of the stream. A record
// that does not decode is skipped: the dashboard is a view, the audit verifies its chain.
func (f *feed) add(record []byte, streamTime time.Time) {
	var r struct {
		EventType string `json:"event_type"`
		Payload   struct {
			SearchID    string          `json:"search_id"`
			ProductType string          `json:"product_type"`
			Decision    json.RawMessage `json:"decision"`
			DecidedBy   string          `json:"decided_by"`
			Reason      string          `json:"reason"`
			ReceivedAt  time.Time       `json:"received_at"`
			ReferredAt  time.Time       `json:"referred_at"`
			DecidedAt   time.Time       `json:"decided_at"`
			FailedAt    time.Time       `json:"failed_at"`
		} `json:"payload"`
	}
	ok := json.Unmarshal(record, &r) == nil && r.Payload.SearchID != ""
	p := &r.Payload
	f.mu.Lock()
	defer f.mu.Unlock()
	if streamTime.After(f.last) {
		f.last = streamTime
	}
	if !ok {
		return
	}
	switch r.EventType {
	case events.TypeApplicationReceived:
		f.agg.Received(p.SearchID, p.ProductType, p.ReceivedAt)
	case events.TypeApplicationReferred:
		f.agg.Referred(p.SearchID, p.ReferredAt)
	case events.TypeUnderwritingDecided:
		f.agg.Underwritten(p.SearchID, p.DecidedBy == events.DecidedByFallback, p.DecidedAt)
	case events.TypeDecisionMade:
		var d string
		_ = json.Unmarshal(p.Decision, &d) // not a string: counted as no decision
		f.agg.Decided(p.SearchID, p.ProductType, d, p.DecidedAt)
	case events.TypeApplicationFailed:
		f.agg.Failed(p.SearchID, p.Reason, p.FailedAt)
	}
}

// summary is the dashboard now.
func (f *feed) summary(now time.Time) stats.Summary {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agg.Summarise(now)
}
