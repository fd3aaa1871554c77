package stats

import (
	"fmt"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestSummarise(t *testing.T) {
	a := New(250 * time.Millisecond)
	// 10 loans received 30 minutes ago: decided in 100ms*i (i=1..10): three within the budget.
	base := now.Add(-30 * time.Minute)
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("loan-%d", i)
		a.Received(id, "loan", base)
		a.Decided(id, "loan", "has_approve", base.Add(time.Duration(i)*80*time.Millisecond))
	}
	// A card rejected, referred and decided by the fallback after 90 s.
	a.Received("card-1", "credit_card", base)
	a.Referred("card-1", base.Add(10*time.Millisecond))
	a.Underwritten("card-1", true, base.Add(90*time.Second))
	a.Decided("card-1", "credit_card", "rejected", base.Add(90*time.Second))
	a.Decided("card-1", "credit_card", "has_approve", base.Add(91*time.Second)) // a repeat: ignored
	// A failure 5 minutes ago, an application just received (not yet eligible), an old one.
	a.Received("failed-1", "loan", now.Add(-5*time.Minute))
	a.Failed("failed-1", "timeout", now.Add(-3*time.Minute))
	a.Received("fresh", "loan", now.Add(-100*time.Millisecond))
	a.Received("old", "loan", now.Add(-2*time.Hour))
	a.Decided("old", "loan", "has_approve", now.Add(-2*time.Hour))

	s := a.Summarise(now)
	if got, want := s.Received, 13; got != want {
		t.Errorf("received = %d, want %d", got, want)
	}
	if got, want := s.PerMinute[30], 11; got != want {
		t.Errorf("minute 30 = %d, want %d", got, want)
	}
	if got, want := s.PerMinute[55], 1; got != want {
		t.Errorf("minute 55 = %d, want %d", got, want)
	}
	if got, want := s.FailedPerMinute[57], 1; got != want {
		t.Errorf("failures at minute 57 = %d, want %d", got, want)
	}
	// Eligible: 10 loans + card + failed (fresh is not); decided in time: 80, 160, 240 ms.
	if s.SyncDecided != 3 || s.SyncEligible != 12 {
		t.Errorf("sync = %d/%d, want 3/12", s.SyncDecided, s.SyncEligible)
	}
	if got, want := s.SyncShare(), 0.25; got != want {
		t.Errorf("share = %v, want %v", got, want)
	}
	// First answers: 80,160,240 then 9 times the budget.
	if got, want := s.FirstAnswer, (Percentiles{N: 12, P50: 250 * time.Millisecond, P90: 250 * time.Millisecond, P99: 250 * time.Millisecond}); got != want {
		t.Errorf("first answer = %+v, want %+v", got, want)
	}
	// Done: 80..800 ms and 90 s.
	if got, want := s.TimeToDone, (Percentiles{N: 11, P50: 480 * time.Millisecond, P90: 800 * time.Millisecond, P99: 90 * time.Second}); got != want {
		t.Errorf("time to done = %+v, want %+v", got, want)
	}
	if got, want := fmt.Sprint(s.Products), "[{credit_card 0 1} {loan 10 0}]"; got != want {
		t.Errorf("products = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(s.Failures), "[{timeout 1}]"; got != want {
		t.Errorf("failures = %s, want %s", got, want)
	}
	if s.Referred != 1 || s.ByFallback != 1 || s.ByOfficer != 0 {
		t.Errorf("underwriting = %d referred, %d officer, %d fallback", s.Referred, s.ByOfficer, s.ByFallback)
	}

	a.Prune(now)
	if _, ok := a.apps["old"]; ok {
		t.Error("prune kept an application older than the window")
	}
	if got, want := len(a.decisions), 11; got != want {
		t.Errorf("decisions kept = %d, want %d", got, want)
	}
}

func TestPercentiles(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want Percentiles
	}{
		{nil, Percentiles{}},
		{[]time.Duration{5}, Percentiles{N: 1, P50: 5, P90: 5, P99: 5}},
		{[]time.Duration{4, 1, 3, 2}, Percentiles{N: 4, P50: 2, P90: 4, P99: 4}},
	}
	for _, tt := range tests {
		if got := percentiles(tt.in); got != tt.want {
			t.Errorf("percentiles(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
