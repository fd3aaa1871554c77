package stats

import (
	"fmt"
	"math"
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
	if got, want := s.From, now.Add(-59*time.Minute); !got.Equal(want) {
		t.Errorf("from = %v, want %v (the window's oldest minute)", got, want)
	}
	if got, want := s.Received, 13; got != want {
		t.Errorf("received = %d, want %d", got, want)
	}
	if got, want := s.PerMinute[29], 11; got != want { // 9:30
		t.Errorf("minute 9:30 = %d, want %d", got, want)
	}
	if got, want := s.PerMinute[54], 1; got != want { // 9:55
		t.Errorf("minute 9:55 = %d, want %d", got, want)
	}
	if got, want := s.PerMinute[58], 1; got != want { // 9:59: "fresh", at 9:59:59.9
		t.Errorf("minute 9:59 = %d, want %d", got, want)
	}
	if got, want := s.FailedPerMinute[56], 1; got != want { // 9:57
		t.Errorf("failures at 9:57 = %d, want %d", got, want)
	}
	// Eligible: 10 loans + card + failed (fresh is not); decided in time: 80, 160, 240 ms.
	if s.SyncDecided != 3 || s.SyncEligible != 12 {
		t.Errorf("sync = %d/%d, want 3/12", s.SyncDecided, s.SyncEligible)
	}
	if got, want := s.SyncShare(), 0.25; got != want {
		t.Errorf("share = %v, want %v", got, want)
	}
	// First answers: 80,160,240 then 9 times the budget.
	checkPercentiles(t, "first answer", s.FirstAnswer, Percentiles{N: 12, P50: 250 * time.Millisecond, P90: 250 * time.Millisecond, P99: 250 * time.Millisecond})
	// Done: 80..800 ms and 90 s.
	checkPercentiles(t, "time to done", s.TimeToDone, Percentiles{N: 11, P50: 480 * time.Millisecond, P90: 800 * time.Millisecond, P99: 90 * time.Second})
	if got, want := fmt.Sprint(s.Products), "[{credit_card 0 1} {loan 10 0}]"; got != want {
		t.Errorf("products = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(s.Failures), "[{timeout 1}]"; got != want {
		t.Errorf("failures = %s, want %s", got, want)
	}
	if s.Referred != 1 || s.ByFallback != 1 || s.ByOfficer != 0 {
		t.Errorf("underwriting = %d referred, %d officer, %d fallback", s.Referred, s.ByOfficer, s.ByFallback)
	}

	// An hour later everything has left the window.
	later := now.Add(Window + time.Minute)
	a.Prune(later)
	if s := a.Summarise(later); s.Received != 0 || len(s.Products) != 0 || s.TimeToDone.N != 0 {
		t.Errorf("an hour later: %+v, want an empty window", s)
	}
	if len(a.open) != 0 || len(a.closed) != 0 {
		t.Errorf("prune kept %d open and %d closed applications", len(a.open), len(a.closed))
	}
}

// checkPercentiles allows the histogram's resolution: 1.6% of the value.
func checkPercentiles(t *testing.T, what string, got, want Percentiles) {
	t.Helper()
	near := func(g, w time.Duration) bool { return math.Abs(float64(g-w)) <= 0.016*float64(w) }
	if got.N != want.N || !near(got.P50, want.P50) || !near(got.P90, want.P90) || !near(got.P99, want.P99) {
		t.Errorf("%s = %+v, want %+v (±1.6%%)", what, got, want)
	}
}

// A day at 500 applications/s keeps only the applications still open and the last two
// minutes' closed ones: the memory is bounded by the rate, not by the traffic.
func TestMemoryIsBoundedByTheRateNotTheTraffic(t *testing.T) {
	a := New(250 * time.Millisecond)
	start := now
	const rate, seconds = 50, 3 * 3600 // a tenth of 500/s over three hours is enough to show it
	for sec := range seconds {
		at := start.Add(time.Duration(sec) * time.Second)
		for i := range rate {
			id := fmt.Sprintf("%d-%d", sec, i)
			a.Received(id, "loan", at)
			if i%10 != 0 { // one in ten stays open until the next second
				a.Decided(id, "loan", "has_approve", at.Add(30*time.Millisecond))
			}
			if sec > 0 && i%10 == 0 {
				a.Failed(fmt.Sprintf("%d-%d", sec-1, i), "timeout", at)
			}
		}
		if sec%60 == 0 {
			a.Prune(at)
		}
	}
	if got, max := len(a.open), rate/10; got > max {
		t.Errorf("open = %d, want at most %d", got, max)
	}
	if got, max := len(a.closed), rate*int(closedFor/time.Second+60); got > max {
		t.Errorf("closed = %d, want at most %d (two minutes and one between prunes)", got, max)
	}
	s := a.Summarise(start.Add(seconds * time.Second))
	if got, want := s.Received, rate*3600; got < want-2*rate*60 || got > want {
		t.Errorf("received in the window = %d, want about %d", got, want)
	}
	checkPercentiles(t, "time to done", s.TimeToDone, Percentiles{N: s.TimeToDone.N, P50: 30 * time.Millisecond, P90: 30 * time.Millisecond, P99: 30 * time.Millisecond})
}

func TestHistogramBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 63 * time.Microsecond, 64 * time.Microsecond, 999 * time.Microsecond,
		time.Millisecond, 47 * time.Millisecond, time.Second, 90 * time.Second, time.Hour, 48 * time.Hour} {
		got := valueOf(bucketOf(d))
		if math.Abs(float64(got-d)) > 0.008*float64(d)+float64(time.Microsecond) {
			t.Errorf("bucket of %v reads back %v: off by more than 0.8%%", d, got)
		}
	}
	if got := bucketOf(1000 * time.Hour); got != histBuckets-1 {
		t.Errorf("bucket of 1000h = %d, want the last, %d", got, histBuckets-1)
	}
}

func TestPercentiles(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want Percentiles
	}{
		{nil, Percentiles{}},
		{[]time.Duration{5 * time.Millisecond}, Percentiles{N: 1, P50: 5 * time.Millisecond, P90: 5 * time.Millisecond, P99: 5 * time.Millisecond}},
		{[]time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}, Percentiles{N: 4, P50: 2 * time.Millisecond, P90: 4 * time.Millisecond, P99: 4 * time.Millisecond}},
	}
	for _, tt := range tests {
		var h histogram
		for _, d := range tt.in {
			h.add(d)
		}
		checkPercentiles(t, fmt.Sprint(tt.in), h.percentiles(), tt.want)
	}
}

func TestRepeatedReceivedMovesAllTheApplicationsCounts(t *testing.T) {
	a := New(250 * time.Millisecond)
	// Referred and decided by an officer while its first received_at was outside the window;
	// a repeated received then moves it, and all its counts, into the window.
	a.Received("moved", "loan", now.Add(-2*time.Hour))
	a.Referred("moved", now.Add(-2*time.Hour))
	a.Underwritten("moved", false, now.Add(-2*time.Hour))
	a.Underwritten("moved", true, now.Add(-2*time.Hour)) // a repeat: the first decision counts
	a.Received("moved", "loan", now.Add(-time.Minute))

	s := a.Summarise(now)
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"received", s.Received, 1},
		{"referred", s.Referred, 1},
		{"by officer", s.ByOfficer, 1},
		{"by fallback", s.ByFallback, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
