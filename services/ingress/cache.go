package ingress

import (
	"sync"
	"time"

	"github.com/loanflow/loanflow/contracts/decisions"
)

// answerCache keeps the latest final records in memory, oldest forgotten first. A final
// record never changes again, so a cached one answers a request without reading the bucket,
// also while NATS is unreachable; a record older than the bucket's TTL is gone from the bucket
// and so from here. Records are kept without their offers' slices shared with anyone.
type answerCache struct {
	ttl time.Duration // 0: records do not expire
	now func() time.Time

	mu   sync.Mutex
	recs map[string]cached
	ring []string
	next int
}

type cached struct {
	rec decisions.Record
	at  time.Time
}

func newAnswerCache(n int, ttl time.Duration) *answerCache {
	return &answerCache{ttl: ttl, now: time.Now, recs: make(map[string]cached, n), ring: make([]string, max(n, 1))}
}

// put keeps rec if it is final.
func (c *answerCache) put(rec decisions.Record) {
	if !rec.Final() {
		return
	}
	// Only what an answer needs: the fingerprint and timestamps stay in the bucket.
	rec = decisions.Record{SearchID: rec.SearchID, Status: rec.Status, Answer: rec.Answer, Failure: rec.Failure}
	e := cached{rec: rec, at: c.now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.recs[rec.SearchID]; ok {
		c.recs[rec.SearchID] = e
		return
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.recs, old)
	}
	c.ring[c.next] = rec.SearchID
	c.next = (c.next + 1) % len(c.ring)
	c.recs[rec.SearchID] = e
}

// get returns the final record of searchID, if one is kept and not past the bucket's TTL.
func (c *answerCache) get(searchID string) (decisions.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.recs[searchID]
	if !ok || (c.ttl > 0 && c.now().Sub(e.at) >= c.ttl) {
		return decisions.Record{}, false
	}
	return e.rec, true
}

// forget drops searchID: its key was created afresh, so what is kept belongs to an
// application that expired.
func (c *answerCache) forget(searchID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.recs, searchID)
}
