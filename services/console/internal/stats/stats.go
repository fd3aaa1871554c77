// Package stats is the console dashboard's arithmetic: it folds pipeline events into a
// sliding window (the last hour, by the minute) and summarises it — applications per minute,
// the share decided synchronously, first-answer and time-to-done percentiles, decisions by
// product, failures, and the underwriting outcome. It does no I/O and is not safe for
// concurrent use; the console feeds it from one goroutine and guards it with a mutex.
//
// Its memory does not grow with the traffic: an application is kept on its own only while it
// is open (received, not yet decided or failed); once it closes, it is folded into the minute
// it was received in, and an hour holds 60 minutes whatever their rate.
package stats

import (
	"math/bits"
	"sort"
	"time"
)

// Window is how far back the dashboard looks.
const Window = time.Hour

const minutes = int(Window / time.Minute)

// closedFor is how long a closed application is remembered, so that a repeated decision or a
// failure racing its decision is recognised and not counted twice. Each costs about 100 bytes:
// at 500 applications/s, 6 MB.
const closedFor = 2 * time.Minute

// app is what the window knows of one open application.
type app struct {
	product  string
	received time.Time
	last     time.Time
	referred bool
	// underwritten says whether, and by whom, underwriting decided it.
	underwritten underwriter
}

// underwriter says who decided a referred application.
type underwriter int8

const (
	notUnderwritten underwriter = iota
	officerDecided
	fallbackDecided
)

// closed is what is left of an application once it is folded in.
type closed struct {
	at              int64 // Unix seconds
	decided, failed bool
}

// minute is one minute of the window: what was received in it (and how those applications
// went), and what was decided or failed in it.
type minute struct {
	start                           time.Time
	received                        int
	referred, byOfficer, byFallback int
	syncDecided, syncEligible       int
	first, done                     histogram
	decisions                       map[string]*ProductCounts
	failures                        map[string]int
	failed                          int
}

// Aggregator folds events into per-minute counts and latency histograms.
type Aggregator struct {
	syncBudget time.Duration
	open       map[string]*app
	closed     map[string]closed
	ring       [minutes + 1]*minute
}

// New returns an empty aggregator; syncBudget is ingress's LOANFLOW_SYNC_BUDGET, the wait
// within which a decision makes the first answer final.
func New(syncBudget time.Duration) *Aggregator {
	return &Aggregator{syncBudget: syncBudget, open: map[string]*app{}, closed: map[string]closed{}}
}

// at returns the bucket of the minute holding t, starting it if it is new; nil when t is
// unknown (zero) or too old for the ring (its slot holds a later minute now).
func (a *Aggregator) at(t time.Time) *minute {
	if t.IsZero() {
		return nil
	}
	start := t.Truncate(time.Minute)
	n := int64(len(a.ring))
	i := ((start.Unix()/60)%n + n) % n
	m := a.ring[i]
	switch {
	case m == nil || m.start.Before(start):
		m = &minute{start: start, decisions: map[string]*ProductCounts{}, failures: map[string]int{}}
		a.ring[i] = m
	case m.start.After(start):
		return nil
	}
	return m
}

// Received records an application received at at.
func (a *Aggregator) Received(searchID, product string, at time.Time) {
	if _, ok := a.closed[searchID]; ok {
		return
	}
	p := a.open[searchID]
	if p == nil {
		p = &app{}
		a.open[searchID] = p
	} else {
		a.count(p, -1) // a repeat: the latest received_at counts, for all the app's counts
	}
	p.product, p.received = product, at
	a.count(p, 1)
	p.last = latest(p.last, at)
}

// count adds d to what an open application counts in the minute it was received in.
func (a *Aggregator) count(p *app, d int) {
	m := a.at(p.received)
	if m == nil {
		return
	}
	m.received += d
	if p.referred {
		m.referred += d
	}
	switch p.underwritten {
	case officerDecided:
		m.byOfficer += d
	case fallbackDecided:
		m.byFallback += d
	}
}

// Referred records that scoring sent the application to an officer.
func (a *Aggregator) Referred(searchID string, at time.Time) {
	if p := a.open[searchID]; p != nil && !p.referred {
		p.referred, p.last = true, latest(p.last, at)
		if m := a.at(p.received); m != nil {
			m.referred++
		}
	}
}

// Underwritten records an underwriting decision: by an officer, or by the fallback.
func (a *Aggregator) Underwritten(searchID string, fallback bool, at time.Time) {
	p := a.open[searchID]
	if p == nil {
		return
	}
	a.Referred(searchID, at)
	if p.underwritten != notUnderwritten {
		return // a repeat: the first decision counts
	}
	p.underwritten = officerDecided
	if fallback {
		p.underwritten = fallbackDecided
	}
	if m := a.at(p.received); m != nil {
		if fallback {
			m.byFallback++
		} else {
			m.byOfficer++
		}
	}
}

// Decided records the final answer (loan.decision.made): decision is has_approve or rejected.
func (a *Aggregator) Decided(searchID, product, decision string, at time.Time) {
	c, isClosed := a.closed[searchID]
	if c.decided {
		return // a repeat
	}
	p := a.open[searchID]
	if p != nil && p.product != "" {
		product = p.product
	}
	if m := a.at(at); m != nil {
		pc := m.decisions[product]
		if pc == nil {
			pc = &ProductCounts{Product: product}
			m.decisions[product] = pc
		}
		if decision == "has_approve" {
			pc.Approved++
		} else {
			pc.Rejected++
		}
	}
	if isClosed {
		c.decided = true
		a.closed[searchID] = c
		return
	}
	took := time.Duration(-1)
	if p != nil {
		took = max(at.Sub(p.received), 0)
	}
	a.close(searchID, p, at, took, true)
}

// Failed records that a stage gave up on the application, with the reason code.
func (a *Aggregator) Failed(searchID, reason string, at time.Time) {
	c, isClosed := a.closed[searchID]
	if c.failed {
		return
	}
	if m := a.at(at); m != nil {
		m.failed++
		m.failures[reason]++
	}
	if isClosed {
		c.failed = true
		a.closed[searchID] = c
		return
	}
	a.close(searchID, a.open[searchID], at, -1, false)
}

// close folds an open application into the minute it was received in; took is the time to
// its decision, negative when it failed undecided. p is nil for an application received
// before the window began: only its decision or failure counts.
func (a *Aggregator) close(searchID string, p *app, at time.Time, took time.Duration, decided bool) {
	a.closed[searchID] = closed{at: at.Unix(), decided: decided, failed: !decided}
	if p == nil {
		return
	}
	delete(a.open, searchID)
	m := a.at(p.received)
	if m == nil {
		return
	}
	m.syncEligible++
	if took >= 0 {
		m.done.add(took)
	}
	if took >= 0 && took <= a.syncBudget {
		m.syncDecided++
		m.first.add(took)
	} else {
		m.first.add(a.syncBudget)
	}
}

// Prune forgets what fell out of the window at now.
func (a *Aggregator) Prune(now time.Time) {
	from := now.Add(-Window)
	for id, p := range a.open {
		if p.last.Before(from) {
			delete(a.open, id)
		}
	}
	for id, c := range a.closed {
		if now.Unix()-c.at > int64(closedFor/time.Second) {
			delete(a.closed, id)
		}
	}
	for i, m := range a.ring {
		if m != nil && m.start.Before(from.Truncate(time.Minute)) {
			a.ring[i] = nil
		}
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Percentiles of a set of durations (nearest rank); N is the set's size.
type Percentiles struct {
	N             int
	P50, P90, P99 time.Duration
}

// histogram counts durations in buckets a 64th of a power of two wide (in microseconds): a
// percentile read from it is within 1.6% of the exact one, and within the observed range.
type histogram struct {
	counts   [histBuckets]uint32
	n        int
	min, max time.Duration
}

const histSub = 64

// histBuckets covers up to 2^38 µs (three days): 64 exact buckets, then 64 per power of two.
const histBuckets = histSub + (38-6)*histSub

func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 7 // us>>shift is in [64, 128)
	return min(histSub+shift*histSub+int(us>>shift)-histSub, histBuckets-1)
}

// valueOf is the middle of bucket i.
func valueOf(i int) time.Duration {
	if i < histSub {
		return time.Duration(i) * time.Microsecond
	}
	shift := uint((i - histSub) / histSub)
	lower := uint64(histSub+(i-histSub)%histSub) << shift
	return time.Duration(lower+(uint64(1)<<shift)/2) * time.Microsecond
}

func (h *histogram) add(d time.Duration) {
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if h.n == 0 || d > h.max {
		h.max = d
	}
	h.counts[bucketOf(d)]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.n == 0 || o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

func (h *histogram) percentiles() Percentiles {
	if h.n == 0 {
		return Percentiles{}
	}
	rank := func(p float64) time.Duration {
		r := uint64(max(int(p*float64(h.n)+0.999999), 1))
		var seen uint64
		for i, c := range h.counts {
			if seen += uint64(c); seen >= r {
				return min(max(valueOf(i), h.min), h.max)
			}
		}
		return h.max
	}
	return Percentiles{N: h.n, P50: rank(0.50), P90: rank(0.90), P99: rank(0.99)}
}

// Count is one labelled count.
type Count struct {
	Label string
	N     int
}

// ProductCounts are one product's final answers.
type ProductCounts struct {
	Product            string
	Approved, Rejected int
}

// Summary is the dashboard at one moment.
type Summary struct {
	From, To time.Time
	// PerMinute counts applications received in each of the window's minutes, oldest first;
	// From is the start of the oldest.
	PerMinute []int
	// FailedPerMinute counts failures in each minute.
	FailedPerMinute []int
	Received        int
	// SyncDecided of SyncEligible applications were decided within the sync budget of being
	// received; SyncEligible leaves out those received less than the budget ago.
	SyncDecided, SyncEligible int
	// FirstAnswer is how long Yandex waited for the first answer: the time to the decision when
	// it came within the sync budget, else the budget itself (the pending answer).
	FirstAnswer Percentiles
	// TimeToDone is from received to the final answer, for the applications decided.
	TimeToDone Percentiles
	Products   []ProductCounts
	Failures   []Count
	// Referred applications, and how underwriting decided them.
	Referred, ByOfficer, ByFallback int
}

// SyncShare is SyncDecided / SyncEligible, 0 when nothing is eligible.
func (s Summary) SyncShare() float64 {
	if s.SyncEligible == 0 {
		return 0
	}
	return float64(s.SyncDecided) / float64(s.SyncEligible)
}

// Summarise computes the dashboard for the window's 60 minutes, the last of them the one
// holding now.
func (a *Aggregator) Summarise(now time.Time) Summary {
	last := now.Truncate(time.Minute)
	from := last.Add(-time.Duration(minutes-1) * time.Minute)
	s := Summary{From: from, To: now, PerMinute: make([]int, minutes), FailedPerMinute: make([]int, minutes)}
	var first, done histogram
	byProduct := map[string]*ProductCounts{}
	reasons := map[string]int{}
	for _, m := range a.ring {
		if m == nil || m.start.Before(from) || m.start.After(last) {
			continue
		}
		i := int(m.start.Sub(from) / time.Minute)
		s.PerMinute[i], s.FailedPerMinute[i] = m.received, m.failed
		s.Received += m.received
		s.Referred += m.referred
		s.ByOfficer += m.byOfficer
		s.ByFallback += m.byFallback
		s.SyncDecided += m.syncDecided
		s.SyncEligible += m.syncEligible
		first.merge(&m.first)
		done.merge(&m.done)
		for product, c := range m.decisions {
			pc := byProduct[product]
			if pc == nil {
				pc = &ProductCounts{Product: product}
				byProduct[product] = pc
			}
			pc.Approved += c.Approved
			pc.Rejected += c.Rejected
		}
		for r, n := range m.failures {
			reasons[r] += n
		}
	}
	// Open applications past the sync budget had a pending first answer.
	for _, p := range a.open {
		if !p.received.Before(from) && now.Sub(p.received) >= a.syncBudget {
			s.SyncEligible++
			first.add(a.syncBudget)
		}
	}
	s.FirstAnswer, s.TimeToDone = first.percentiles(), done.percentiles()
	for _, pc := range byProduct {
		s.Products = append(s.Products, *pc)
	}
	sort.Slice(s.Products, func(i, j int) bool { return s.Products[i].Product < s.Products[j].Product })
	for r, n := range reasons {
		s.Failures = append(s.Failures, Count{Label: r, N: n})
	}
	sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].Label < s.Failures[j].Label })
	return s
}
