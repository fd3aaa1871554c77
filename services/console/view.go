package console

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

// view is the queue page's copy of the underwriting bucket, kept by one watcher per process
// (never one per request). It only lists: every action reads the case from the bucket and
// changes it with compare-and-swap. A watcher whose updates stop (a connection drop can close
// them for good) is re-created.
type view struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu     sync.RWMutex
	cases  map[string]underwriting.Case
	synced bool
}

// recentlyDecided is how long a decided case stays on the queue page, below the open ones.
const recentlyDecided = 15 * time.Minute

func newView(kv jetstream.KeyValue, log *slog.Logger) *view {
	return &view{kv: kv, log: log, cases: map[string]underwriting.Case{}}
}

// run watches the bucket until ctx ends.
func (v *view) run(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := v.kv.WatchAll(ctx)
		if err != nil {
			v.log.Warn("underwriting watcher", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		v.consume(ctx, w)
		_ = w.Stop()
		if !sleep(ctx, 250*time.Millisecond) {
			return
		}
	}
}

func (v *view) consume(ctx context.Context, w jetstream.KeyWatcher) {
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			v.prune(time.Now())
		case e, ok := <-w.Updates():
			if !ok {
				v.log.Warn("underwriting watcher closed, watching again")
				return
			}
			v.apply(e)
		}
	}
}

func (v *view) apply(e jetstream.KeyValueEntry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e == nil { // the initial values are in
		v.synced = true
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.cases, e.Key())
		return
	}
	var c underwriting.Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		v.log.Warn("underwriting case does not decode", "key", e.Key(), "err", err)
		return
	}
	v.cases[e.Key()] = c
}

func (v *view) prune(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, c := range v.cases {
		if c.State == underwriting.StateDecided && c.Decision != nil && now.Sub(c.Decision.At) > recentlyDecided {
			delete(v.cases, k)
		}
	}
}

// list returns the undecided cases, oldest first, and the cases decided in the last minutes,
// latest first.
func (v *view) list(now time.Time) (pending, decided []underwriting.Case) {
	v.mu.RLock()
	for _, c := range v.cases {
		if c.State != underwriting.StateDecided {
			pending = append(pending, c)
		} else if c.Decision != nil && now.Sub(c.Decision.At) <= recentlyDecided {
			decided = append(decided, c)
		}
	}
	v.mu.RUnlock()
	slices.SortFunc(pending, func(a, b underwriting.Case) int {
		if d := a.ReceivedAt.Compare(b.ReceivedAt); d != 0 {
			return d
		}
		if d := a.ReferredAt.Compare(b.ReferredAt); d != 0 {
			return d
		}
		// The search_id last, so that cases of the same instant keep their places between
		// refreshes of the live queue (the map's order is random).
		return strings.Compare(a.SearchID, b.SearchID)
	})
	slices.SortFunc(decided, func(a, b underwriting.Case) int {
		if d := b.Decision.At.Compare(a.Decision.At); d != 0 {
			return d
		}
		return strings.Compare(a.SearchID, b.SearchID)
	})
	return pending, decided
}

// ready reports whether the watcher has delivered the bucket's contents once.
func (v *view) ready() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.synced
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
