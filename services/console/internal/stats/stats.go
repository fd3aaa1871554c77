// Package stats is the console dashboard's arithmetic: it folds pipeline events into a
// sliding window (the last hour) and summarises it — applications per minute, the share
// decided synchronously, first-answer and time-to-done percentiles, decisions by product,
// failures, and the underwriting outcome. It does no I/O and is not safe for concurrent use;
// the console feeds it from one goroutine and guards it with a mutex.
package stats

import (
	"slices"
	"sort"
	"time"
)

// Window is how far back the dashboard looks.
const Window = time.Hour

// app is what the window knows of one application.
type app struct {
	product    string
	received   time.Time
	decided    time.Time
	decision   string
	failed     time.Time
	referred   bool
	last       time.Time
	underwrote string // "officer" or "fallback" once decided by underwriting
}

// Aggregator folds events into per-application timings.
type Aggregator struct {
	syncBudget time.Duration
	apps       map[string]*app
	decisions  []stamp // decision.made: product and decision
	failures   []stamp // application.failed: reason
}

type stamp struct {
	at    time.Time
	key   string // product
	value string // decision or reason
}

// New returns an empty aggregator; syncBudget is ingress's LOANFLOW_SYNC_BUDGET, the wait
// within which a decision makes the first answer final.
func New(syncBudget time.Duration) *Aggregator {
	return &Aggregator{syncBudget: syncBudget, apps: map[string]*app{}}
}

func (a *Aggregator) get(id string, at time.Time) *app {
	p := a.apps[id]
	if p == nil {
		p = &app{}
		a.apps[id] = p
	}
	if at.After(p.last) {
		p.last = at
	}
	return p
}

// Received records an application received at at.
func (a *Aggregator) Received(searchID, product string, at time.Time) {
	p := a.get(searchID, at)
	p.product, p.received = product, at
}

// Referred records that scoring sent the application to an officer.
func (a *Aggregator) Referred(searchID string, at time.Time) { a.get(searchID, at).referred = true }

// Underwritten records an underwriting decision: by an officer, or by the fallback.
func (a *Aggregator) Underwritten(searchID string, fallback bool, at time.Time) {
	p := a.get(searchID, at)
	p.referred = true
	p.underwrote = "officer"
	if fallback {
		p.underwrote = "fallback"
	}
}

// Decided records the final answer (loan.decision.made): decision is has_approve or rejected.
func (a *Aggregator) Decided(searchID, product, decision string, at time.Time) {
	p := a.get(searchID, at)
	if p.decided.IsZero() {
		p.decided, p.decision = at, decision
		if p.product == "" {
			p.product = product
		}
		a.decisions = append(a.decisions, stamp{at: at, key: product, value: decision})
	}
}

// Failed records that a stage gave up on the application, with the reason code.
func (a *Aggregator) Failed(searchID, reason string, at time.Time) {
	p := a.get(searchID, at)
	if p.failed.IsZero() {
		p.failed = at
		a.failures = append(a.failures, stamp{at: at, value: reason})
	}
}

// Prune forgets what fell out of the window at now.
func (a *Aggregator) Prune(now time.Time) {
	from := now.Add(-Window)
	for id, p := range a.apps {
		if p.last.Before(from) {
			delete(a.apps, id)
		}
	}
	keep := func(s stamp) bool { return s.at.Before(from) }
	a.decisions = slices.DeleteFunc(a.decisions, keep)
	a.failures = slices.DeleteFunc(a.failures, keep)
}

// Percentiles of a set of durations (nearest rank); N is the set's size.
type Percentiles struct {
	N             int
	P50, P90, P99 time.Duration
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Percentiles{N: len(ds), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99)}
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
	// PerMinute counts applications received in each of the window's minutes, oldest first.
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

// Summarise computes the dashboard for the window ending at now.
func (a *Aggregator) Summarise(now time.Time) Summary {
	from := now.Add(-Window)
	s := Summary{From: from, To: now, PerMinute: make([]int, 60), FailedPerMinute: make([]int, 60)}
	minute := func(t time.Time) int { return int(t.Sub(from) / time.Minute) }
	var first, done []time.Duration
	for _, p := range a.apps {
		if p.received.IsZero() || p.received.Before(from) || p.received.After(now) {
			continue
		}
		s.Received++
		if m := minute(p.received); m >= 0 && m < 60 {
			s.PerMinute[m]++
		}
		if p.referred {
			s.Referred++
		}
		switch p.underwrote {
		case "officer":
			s.ByOfficer++
		case "fallback":
			s.ByFallback++
		}
		var took time.Duration
		decided := !p.decided.IsZero()
		if decided {
			took = max(p.decided.Sub(p.received), 0)
			done = append(done, took)
		}
		if now.Sub(p.received) < a.syncBudget && !decided {
			continue // its first answer may still be final
		}
		s.SyncEligible++
		if decided && took <= a.syncBudget {
			s.SyncDecided++
			first = append(first, took)
		} else {
			first = append(first, a.syncBudget)
		}
	}
	s.FirstAnswer, s.TimeToDone = percentiles(first), percentiles(done)

	byProduct := map[string]*ProductCounts{}
	for _, d := range a.decisions {
		if d.at.Before(from) {
			continue
		}
		pc := byProduct[d.key]
		if pc == nil {
			pc = &ProductCounts{Product: d.key}
			byProduct[d.key] = pc
		}
		if d.value == "has_approve" {
			pc.Approved++
		} else {
			pc.Rejected++
		}
	}
	for _, pc := range byProduct {
		s.Products = append(s.Products, *pc)
	}
	sort.Slice(s.Products, func(i, j int) bool { return s.Products[i].Product < s.Products[j].Product })

	reasons := map[string]int{}
	for _, f := range a.failures {
		if f.at.Before(from) {
			continue
		}
		reasons[f.value]++
		if m := minute(f.at); m >= 0 && m < 60 {
			s.FailedPerMinute[m]++
		}
	}
	for r, n := range reasons {
		s.Failures = append(s.Failures, Count{Label: r, N: n})
	}
	sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].Label < s.Failures[j].Label })
	return s
}
