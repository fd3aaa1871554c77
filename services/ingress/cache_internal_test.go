package ingress

import (
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/decisions"
)

func TestAnswerCache(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	c := newAnswerCache(2, time.Hour)
	c.now = func() time.Time { return now }
	final := func(id string) decisions.Record {
		return decisions.Record{SearchID: id, Status: decisions.StatusFailed, Failure: &decisions.Failure{Reason: "timeout"}}
	}
	c.put(decisions.Record{SearchID: "pending", Status: decisions.StatusPending})
	c.put(final("a"))
	c.put(final("b"))

	tests := []struct {
		name  string
		id    string
		after time.Duration
		want  bool
	}{
		{"final record kept", "a", 0, true},
		{"pending record never kept", "pending", 0, false},
		{"unknown id", "z", 0, false},
		{"just inside the bucket's TTL", "b", time.Hour - time.Nanosecond, true},
		{"past the bucket's TTL", "b", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.now = func() time.Time { return now.Add(tt.after) }
			rec, got := c.get(tt.id)
			if got != tt.want {
				t.Fatalf("get(%q) ok = %v, want %v", tt.id, got, tt.want)
			}
			if got && rec.SearchID != tt.id {
				t.Errorf("get(%q) = %q", tt.id, rec.SearchID)
			}
		})
	}

	c.now = func() time.Time { return now }
	c.put(final("c")) // the ring holds two: "a" goes
	if _, ok := c.get("a"); ok {
		t.Error("oldest record kept past the cache's size")
	}
	c.forget("c")
	if _, ok := c.get("c"); ok {
		t.Error("forgotten record still answered")
	}
}
