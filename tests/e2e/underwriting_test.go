package e2e_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// The default policy refers a known client's loan above 3 000 000 ₽ to an officer.
const (
	referredAmount = 3_500_000
	referredTerm   = 60
)

// postReferred sends a loan the policy refers and checks that Yandex is told to wait.
func (s *system) postReferred(searchID string) {
	s.t.Helper()
	a := s.post(loan(searchID, knownA, referredAmount, referredTerm))
	if a.status != http.StatusOK || a.body["status"] != "pending" {
		s.t.Fatalf("referred application: %d %s, want 200 pending", a.status, a.raw)
	}
	if a.header.Get("Retry-After") == "" {
		s.t.Error("pending answer without Retry-After")
	}
}

// doneWith checks a done answer approves with offers of approval only, and returns the
// largest amount.max among them.
func doneWith(t *testing.T, a answer, approval partnerapi.OfferDecision) partnerapi.Money {
	t.Helper()
	if a.status != http.StatusOK || a.body["status"] != "done" || a.body["decision"] != string(partnerapi.DecisionHasApprove) {
		t.Fatalf("answer %d %s, want done has_approve", a.status, a.raw)
	}
	list := offers(t, a)
	if len(list) == 0 {
		t.Fatalf("done without offers: %s", a.raw)
	}
	var largest partnerapi.Money
	for _, o := range list {
		if o.Decision != approval {
			t.Errorf("offer %s, want %s", o.Decision, approval)
		}
		largest = max(largest, o.Amount.Max)
	}
	return largest
}

// trail is the audit of one referred application: its records by event type, and the order
// of the types as first recorded.
type trail struct {
	byType map[string][]auditRecord
	order  []string
}

// underwritingTrail waits until the audit holds the answer of searchID (decision.made) and
// returns its records.
func (s *system) underwritingTrail(searchID string) trail {
	s.t.Helper()
	natstest.WaitFor(s.t, searchID+"'s answer in the audit", func() bool {
		for _, r := range s.audited(searchID) {
			if r.EventType == events.TypeDecisionMade {
				return true
			}
		}
		return false
	})
	tr := trail{byType: map[string][]auditRecord{}}
	for _, r := range s.audited(searchID) {
		if len(tr.byType[r.EventType]) == 0 {
			tr.order = append(tr.order, r.EventType)
		}
		tr.byType[r.EventType] = append(tr.byType[r.EventType], r)
	}
	return tr
}

// one decodes the single record of eventType into v.
func (tr trail) one(t *testing.T, eventType string, v any) {
	t.Helper()
	recs := tr.byType[eventType]
	if len(recs) != 1 {
		t.Fatalf("%d %s records, want 1 (audit: %v)", len(recs), eventType, tr.order)
	}
	if err := json.Unmarshal(recs[0].Payload, v); err != nil {
		t.Fatalf("%s record: %v", eventType, err)
	}
}

// before checks that the records of the types came in this order.
func (tr trail) before(t *testing.T, types ...string) {
	t.Helper()
	last := -1
	for _, typ := range types {
		i := slices.Index(tr.order, typ)
		if i < 0 || i < last {
			t.Fatalf("audit order %v, want %v in this order", tr.order, types)
		}
		last = i
	}
}

// TestUnderwritingFallbackThroughTheAllInOne: nobody decides a referred application, so at
// the policy's share (0.75) of a short answer deadline the console applies the fallback, a
// pre-approval up to 300 000 ₽, and the next poll answers done with it; the audit says the
// policy decided, and the application never timed out.
func TestUnderwritingFallbackThroughTheAllInOne(t *testing.T) {
	const deadline = 8 * time.Second
	s := start(t, options{budget: 100 * time.Millisecond, configure: func(c *allinone.Config) {
		c.Ingress.AnswerDeadline = deadline
	}})
	id := "7d3e9b1a-4c2f-4e6d-8a5b-1f0e9d8c7b6a"
	posted := time.Now()
	s.postReferred(id)

	a := s.until(id)
	if got := time.Since(posted); got < deadline*3/4-time.Second {
		t.Errorf("answered after %s, before the officers' time (%s) was up", got, deadline*3/4)
	}
	if got, want := doneWith(t, a, partnerapi.OfferPreApproved), partnerapi.Money(300_000_00); got != want {
		t.Errorf("largest offer up to %s, want the fallback's %s", got, want)
	}

	tr := s.underwritingTrail(id)
	tr.before(t, events.TypeApplicationReferred, events.TypeUnderwritingDecided, events.TypeDecisionMade)
	var referred events.ApplicationReferred
	tr.one(t, events.TypeApplicationReferred, &referred)
	var decided events.UnderwritingDecided
	tr.one(t, events.TypeUnderwritingDecided, &decided)
	if decided.DecidedBy != events.DecidedByFallback || !slices.Contains(decided.ReasonCodes, "UNDERWRITING_FALLBACK") {
		t.Errorf("decided record: by %q, reasons %v; want the policy's fallback", decided.DecidedBy, decided.ReasonCodes)
	}
	if decided.Decision.Approval != partnerapi.OfferPreApproved || decided.Decision.MaxAmount != 300_000_00 {
		t.Errorf("fallback decision %+v, want pre_approved up to 300 000", decided.Decision)
	}
	if decided.DecidedAt.Before(referred.DecideBy) {
		t.Errorf("decided at %s, before decide_by %s", decided.DecidedAt, referred.DecideBy)
	}
	for _, typ := range []string{events.TypeUnderwritingTaken, events.TypeApplicationFailed} {
		if n := len(tr.byType[typ]); n != 0 {
			t.Errorf("%d %s records, want none", n, typ)
		}
	}
	// The deadline passes: the answer stays the fallback's and nothing more is recorded.
	recorded := len(s.audited(id))
	time.Sleep(time.Until(posted.Add(deadline + time.Second)))
	if a := s.until(id); a.body["status"] != "done" {
		t.Errorf("after the deadline: %s", a.raw)
	}
	if n := len(s.audited(id)); n != recorded {
		t.Errorf("the audit grew after the answer: %d records, had %d", n, recorded)
	}
}
