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

// feed keeps the dashboard's last hour: an ordered consumer reads the pipeline events of the
// LOANS stream from an hour ago on, and folds them into the aggregator. It reads LOANS rather
// than AUDIT so that the figures do not lag behind the audit's batches; times come from the
// events themselves (received_at, decided_at, failed_at), not from when they were read.
type feed struct {
	js  jetstream.JetStream
	log *slog.Logger

	mu   sync.Mutex
	agg  *stats.Aggregator
	last time.Time // the stream time of the last event read
}

var feedSubjects = []string{
	events.TypeApplicationReceived, events.TypeApplicationReferred, events.TypeUnderwritingDecided,
	events.TypeDecisionMade, events.TypeApplicationFailed,
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
		cons, err := f.js.OrderedConsumer(ctx, topology.StreamLoans, jetstream.OrderedConsumerConfig{
			FilterSubjects: feedSubjects, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
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
			f.add(m.Subject(), m.Data(), at)
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

// add folds one event in. An event that does not decode is skipped: the dashboard is a view,
// the pipeline deals with poison events.
func (f *feed) add(eventType string, data []byte, streamTime time.Time) {
	var p struct {
		SearchID    string    `json:"search_id"`
		ProductType string    `json:"product_type"`
		Decision    any       `json:"decision"`
		DecidedBy   string    `json:"decided_by"`
		Reason      string    `json:"reason"`
		ReceivedAt  time.Time `json:"received_at"`
		ReferredAt  time.Time `json:"referred_at"`
		DecidedAt   time.Time `json:"decided_at"`
		FailedAt    time.Time `json:"failed_at"`
	}
	ok := json.Unmarshal(data, &p) == nil && p.SearchID != ""
	f.mu.Lock()
	defer f.mu.Unlock()
	if streamTime.After(f.last) {
		f.last = streamTime
	}
	if !ok {
		return
	}
	switch eventType {
	case events.TypeApplicationReceived:
		f.agg.Received(p.SearchID, p.ProductType, p.ReceivedAt)
	case events.TypeApplicationReferred:
		f.agg.Referred(p.SearchID, p.ReferredAt)
	case events.TypeUnderwritingDecided:
		f.agg.Underwritten(p.SearchID, p.DecidedBy == events.DecidedByFallback, p.DecidedAt)
	case events.TypeDecisionMade:
		d, _ := p.Decision.(string)
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
