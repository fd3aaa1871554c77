package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/services/console/internal/stats"
)

// feed keeps the dashboard's last hour: an ordered consumer reads the AUDIT stream's records
// from an hour ago on and folds the pipeline events they hold into the aggregator. It reads
// AUDIT, not LOANS: the console's NATS user may create consumers on AUDIT (its timelines), but
// not on LOANS, where that permission would also let it pull the other services' durable
// consumers (deploy/nats/users.conf). AUDIT holds every loan.> event in LOANS order, so the
// figures are the same, only later by the audit's batch (up to half a second when the audit
// keeps up). Times come from the events themselves (received_at, decided_at, failed_at), not
// from when they were recorded or read.
type feed struct {
	js  jetstream.JetStream
	log *slog.Logger

	mu   sync.Mutex
	agg  *stats.Aggregator
	last time.Time // the AUDIT stream time of the last record read
}

func newFeed(js jetstream.JetStream, syncBudget time.Duration, log *slog.Logger) *feed {
	return &feed{js: js, log: log, agg: stats.New(syncBudget)}
}

// run reads events until ctx ends, starting again from where it stopped when consuming fails.
func (f *feed) run(ctx context.Context) {
	for ctx.Err() == nil {
		since := time.Now().Add(-stats.Window)
		f.mu.Lock()
		if f.last.After(since) {
			since = f.last.Add(time.Nanosecond)
		}
		f.mu.Unlock()
		// The audit's subjects are per application, not per event type: every record is read
		// and add picks the events by the record's event_type.
		cons, err := f.js.OrderedConsumer(ctx, topology.StreamAudit, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{topology.SubjectAudit}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		})
		if err != nil {
			f.log.Warn("dashboard feed", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		failed := make(chan error, 1)
		cc, err := cons.Consume(func(m jetstream.Msg) {
			var at time.Time
			if md, err := m.Metadata(); err == nil {
				at = md.Timestamp
			}
			f.add(m.Data(), at)
		}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			select {
			case failed <- err:
			default:
			}
		}))
		if err != nil {
			f.log.Warn("dashboard feed", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		prune := time.NewTicker(time.Minute)
	wait:
		for {
			select {
			case <-ctx.Done():
				break wait
			case <-prune.C:
				f.mu.Lock()
				f.agg.Prune(time.Now())
				f.mu.Unlock()
			case err := <-failed:
				// The ordered consumer recovers from most errors by itself; only log them.
				f.log.Debug("dashboard feed", "err", err)
			case <-cc.Closed():
				break wait
			}
		}
		prune.Stop()
		cc.Stop()
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
