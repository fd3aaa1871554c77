package ingress

import (
	"sync"

	"github.com/loanflow/loanflow/contracts/decisions"
)

// answerCache keeps the latest final records in memory, oldest forgotten first, so that polls
// can still be answered while NATS is unreachable. It never decides anything: with NATS up,
// the bucket is read. Records are kept without their offers' slices shared with anyone.
type answerCache struct {
	mu   sync.Mutex
	recs map[string]decisions.Record
	ring []string
	next int
}

func newAnswerCache(n int) *answerCache {
	return &answerCache{recs: make(map[string]decisions.Record, n), ring: make([]string, max(n, 1))}
}

// put keeps rec if it is final.
func (c *answerCache) put(rec decisions.Record) {
	if !rec.Final() {
		return
	}
	// Only what an answer needs: the fingerprint and timestamps stay in the bucket.
	rec = decisions.Record{SearchID: rec.SearchID, Status: rec.Status, Answer: rec.Answer, Failure: rec.Failure}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.recs[rec.SearchID]; ok {
		c.recs[rec.SearchID] = rec
		return
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.recs, old)
	}
	c.ring[c.next] = rec.SearchID
	c.next = (c.next + 1) % len(c.ring)
	c.recs[rec.SearchID] = rec
}

func (c *answerCache) get(searchID string) (decisions.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok := c.recs[searchID]
	return rec, ok
}
