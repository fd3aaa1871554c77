package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/decisions"
)

// store reads and writes decisions.Record values in the loan_decisions bucket.
type store struct {
	kv    jetstream.KeyValue
	cache *answerCache
	// leader confirms a "not found" with the stream leader (nil: trust the direct read).
	leader *leaderReader
}

// errNotFound means no application with that search_id was ever received (or it expired).
var errNotFound = errors.New("no such application")

// create records a new pending application, first writer wins. created is false when the key
// already exists; existing is then the current record.
func (s *store) create(ctx context.Context, rec decisions.Record) (created bool, rev uint64, existing decisions.Record, err error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, 0, existing, err
	}
	rev, err = s.kv.Create(ctx, rec.SearchID, b)
	if err == nil {
		return true, rev, rec, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, 0, existing, fmt.Errorf("create %s: %w", rec.SearchID, err)
	}
	existing, rev, err = s.get(ctx, rec.SearchID)
	if errors.Is(err, errNotFound) {
		// Deleted between the two calls (a failed publish rolled it back): try once more.
		return s.create(ctx, rec)
	}
	return false, rev, existing, err
}

// get returns the current record and its revision.
func (s *store) get(ctx context.Context, searchID string) (decisions.Record, uint64, error) {
	var rec decisions.Record
	var (
		value []byte
		rev   uint64
	)
	e, err := s.kv.Get(ctx, searchID)
	switch {
	case (errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)) && s.leader != nil:
		// With replicas, a direct read may be served by a follower that has not applied the
		// write yet (just created, or catching up after a restart): only the leader may say
		// an application does not exist.
		value, rev, err = s.leader.get(ctx, searchID)
	case err == nil:
		value, rev = e.Value(), e.Revision()
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return rec, 0, errNotFound
	}
	if err != nil {
		return rec, 0, fmt.Errorf("get %s: %w", searchID, err)
	}
	if err := json.Unmarshal(value, &rec); err != nil {
		return rec, 0, fmt.Errorf("decode record %s: %w", searchID, err)
	}
	s.cache.put(rec)
	return rec, rev, nil
}

// rollback removes a pending record whose event could not be published, so that Yandex's
// retry starts afresh instead of waiting for an event that does not exist.
func (s *store) rollback(ctx context.Context, searchID string, rev uint64) error {
	return s.kv.Delete(ctx, searchID, jetstream.LastRevision(rev))
}

// markFailed makes the application failed unless it is already final. It creates the record
// when there is none (a failed event that never went through ingress).
func (s *store) markFailed(ctx context.Context, searchID string, f decisions.Failure) error {
	for range 10 {
		rec, rev, err := s.get(ctx, searchID)
		now := time.Now().UTC()
		if errors.Is(err, errNotFound) {
			rec = decisions.Record{SearchID: searchID, Status: decisions.StatusFailed, Failure: &f, CreatedAt: now, UpdatedAt: now}
			b, _ := json.Marshal(rec)
			if _, err := s.kv.Create(ctx, searchID, b); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
				return err
			}
			continue // someone wrote it meanwhile: read again
		}
		if err != nil {
			return err
		}
		if rec.Final() {
			return nil
		}
		rec.Status, rec.Failure, rec.UpdatedAt = decisions.StatusFailed, &f, now
		b, _ := json.Marshal(rec)
		if _, err := s.kv.Update(ctx, searchID, b, rev); err == nil {
			return nil
		} else if !isWrongRevision(err) {
			return fmt.Errorf("mark %s failed: %w", searchID, err)
		}
	}
	return fmt.Errorf("mark %s failed: record kept changing", searchID)
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// watcher is the one KV watch of the process: it wakes the requests waiting on a key when that
// key changes. It only speeds answers up; every answer is read with Get.
type watcher struct {
	kv    jetstream.KeyValue
	cache *answerCache
	log   *slog.Logger

	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func newWatcher(kv jetstream.KeyValue, cache *answerCache, log *slog.Logger) *watcher {
	return &watcher{kv: kv, cache: cache, log: log, waiters: map[string][]chan struct{}{}}
}

// run watches until ctx ends, re-creating the watch whenever its updates stop (a dropped
// connection can close the channel for good).
func (w *watcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		kw, err := w.kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
		if err != nil {
			w.log.Warn("kv watch failed, retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range kw.Updates() {
			if e == nil {
				continue
			}
			var rec decisions.Record
			if json.Unmarshal(e.Value(), &rec) == nil {
				w.cache.put(rec)
			}
			w.notify(e.Key())
		}
		_ = kw.Stop()
		if ctx.Err() == nil {
			w.log.Warn("kv watch ended, re-creating")
			// Waiters may have missed an update while the watch was down: wake them all so
			// they read the bucket again.
			w.notifyAll()
		}
	}
}

// subscribe registers interest in key before the caller reads it, so no update is missed;
// cancel must be called when done.
func (w *watcher) subscribe(key string) (ch <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	w.waiters[key] = append(w.waiters[key], c)
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.waiters[key]
		for i, x := range list {
			if x == c {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(w.waiters, key)
		} else {
			w.waiters[key] = list
		}
	}
}

func (w *watcher) notify(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.waiters[key] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (w *watcher) notifyAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range w.waiters {
		for _, c := range list {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}
