package underwriting

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
)

var t0 = time.Date(2026, 11, 23, 9, 41, 7, 0, time.UTC)

// golden is the contract's referred sample, times moved to t0.
func golden(t *testing.T) events.ApplicationReferred {
	t.Helper()
	b, err := os.ReadFile("../../../../contracts/testdata/events/loan.application.referred.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.ApplicationReferred
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	ev.ReceivedAt, ev.ReferredAt, ev.DecideBy = t0, t0, t0.Add(90*time.Second)
	return ev
}

func openCase(t *testing.T) Case {
	t.Helper()
	c, err := Open(golden(t), "corr-1", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenRefusesBadReferrals(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*events.ApplicationReferred)
	}{
		{"no search_id", func(e *events.ApplicationReferred) { e.SearchID = "" }},
		{"bad product", func(e *events.ApplicationReferred) { e.ProductType = "mortgage" }},
		{"no decide_by", func(e *events.ApplicationReferred) { e.DecideBy = time.Time{} }},
		{"inverted bounds", func(e *events.ApplicationReferred) { e.MinAmount, e.MaxAmount = 100, 10 }},
		{"fallback approved without amount", func(e *events.ApplicationReferred) { e.Fallback.MaxAmount = 0 }},
		{"fallback unknown outcome", func(e *events.ApplicationReferred) { e.Fallback.Outcome = "maybe" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := golden(t)
			tt.mod(&ev)
			if _, err := Open(ev, "", ""); err == nil {
				t.Fatal("Open accepted it")
			}
		})
	}
	c := openCase(t)
	if got, want := c.State, StateOpen; got != want {
		t.Errorf("state = %s, want %s", got, want)
	}
}

func TestTransitions(t *testing.T) {
	approve := Verdict{Approve: true, Approval: partnerapi.OfferFullApproved, Amount: 2_000_000_00, Comment: "доход подтверждён"}
	type step func(Case) (Case, error)
	take := func(who string, at time.Duration) step {
		return func(c Case) (Case, error) { return c.Take(who, t0.Add(at)) }
	}
	decide := func(who string, v Verdict, at time.Duration) step {
		return func(c Case) (Case, error) { return c.Decide(who, v, t0.Add(at)) }
	}
	fallback := func(at time.Duration) step {
		return func(c Case) (Case, error) { return c.ApplyFallback(t0.Add(at)) }
	}
	tests := []struct {
		name      string
		steps     []step
		wantErr   error // of the last step
		wantState State
		wantBy    string
	}{
		{"take", []step{take("ivanova", time.Second)}, nil, StateTaken, ""},
		{"take twice by the same officer", []step{take("ivanova", time.Second), take("ivanova", 2*time.Second)}, nil, StateTaken, ""},
		{"second officer cannot take", []step{take("ivanova", time.Second), take("petrov", 2*time.Second)}, ErrTaken, StateTaken, ""},
		{"take after decide_by", []step{take("ivanova", 90*time.Second)}, ErrExpired, StateOpen, ""},
		{"decide without taking", []step{decide("ivanova", approve, time.Second)}, ErrNotTaken, StateOpen, ""},
		{"approve", []step{take("ivanova", time.Second), decide("ivanova", approve, 2*time.Second)}, nil, StateDecided, "ivanova"},
		{"reject", []step{take("ivanova", time.Second), decide("ivanova", Verdict{Comment: "долговая нагрузка"}, 2*time.Second)}, nil, StateDecided, "ivanova"},
		{"other officer cannot decide", []step{take("ivanova", time.Second), decide("petrov", approve, 2*time.Second)}, ErrTaken, StateTaken, ""},
		{"decide after decide_by", []step{take("ivanova", time.Second), decide("ivanova", approve, 91*time.Second)}, ErrExpired, StateTaken, ""},
		{"decide twice", []step{take("ivanova", time.Second), decide("ivanova", approve, 2*time.Second), decide("ivanova", approve, 3*time.Second)}, ErrDecided, StateDecided, "ivanova"},
		{"take a decided case", []step{take("ivanova", time.Second), decide("ivanova", approve, 2*time.Second), take("petrov", 3*time.Second)}, ErrDecided, StateDecided, "ivanova"},
		{"amount above bounds", []step{take("ivanova", time.Second), decide("ivanova", Verdict{Approve: true, Approval: partnerapi.OfferPreApproved, Amount: 2_500_000_01, Comment: "x"}, 2*time.Second)}, ErrInvalid, StateTaken, ""},
		{"amount below bounds", []step{take("ivanova", time.Second), decide("ivanova", Verdict{Approve: true, Approval: partnerapi.OfferPreApproved, Amount: 29_999_99, Comment: "x"}, 2*time.Second)}, ErrInvalid, StateTaken, ""},
		{"approval unknown", []step{take("ivanova", time.Second), decide("ivanova", Verdict{Approve: true, Approval: "maybe", Amount: 100_000_00, Comment: "x"}, 2*time.Second)}, ErrInvalid, StateTaken, ""},
		{"no comment", []step{take("ivanova", time.Second), decide("ivanova", Verdict{Comment: "  "}, 2*time.Second)}, ErrInvalid, StateTaken, ""},
		{"phone in comment", []step{take("ivanova", time.Second), decide("ivanova", Verdict{Comment: "звонил на 933 044-50-40"}, 2*time.Second)}, ErrInvalid, StateTaken, ""},
		{"fallback not due", []step{fallback(89 * time.Second)}, ErrNotDue, StateOpen, ""},
		{"fallback on an open case", []step{fallback(90 * time.Second)}, nil, StateDecided, events.DecidedByFallback},
		{"fallback on a taken case", []step{take("ivanova", time.Second), fallback(95 * time.Second)}, nil, StateDecided, events.DecidedByFallback},
		{"fallback after an officer", []step{take("ivanova", time.Second), decide("ivanova", approve, 2*time.Second), fallback(95 * time.Second)}, ErrDecided, StateDecided, "ivanova"},
		{"officer after the fallback", []step{take("ivanova", time.Second), fallback(95 * time.Second), decide("ivanova", approve, 96*time.Second)}, ErrDecided, StateDecided, events.DecidedByFallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openCase(t)
			var err error
			for _, s := range tt.steps {
				var next Case
				next, err = s(c)
				if err == nil {
					c = next
				} else if next.State != c.State {
					t.Fatalf("a failed step changed the state to %s", next.State)
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := c.State; got != tt.wantState {
				t.Errorf("state = %s, want %s", got, tt.wantState)
			}
			gotBy := ""
			if c.Decision != nil {
				gotBy = c.Decision.By
			}
			if gotBy != tt.wantBy {
				t.Errorf("decided by %q, want %q", gotBy, tt.wantBy)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	base := []string{"KNOWN_CLIENT", "DTI_WITHIN_LIMIT", "REFER_LARGE_AMOUNT"}
	approved := func() Case {
		c, _ := openCase(t).Take("ivanova", t0.Add(time.Second))
		c, err := c.Decide("ivanova", Verdict{Approve: true, Approval: partnerapi.OfferFullApproved, Amount: 2_000_000_00, Comment: " Подтверждён доход "}, t0.Add(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rejected := func() Case {
		c, _ := openCase(t).Take("ivanova", t0.Add(time.Second))
		c, _ = c.Decide("ivanova", Verdict{Comment: "нет"}, t0.Add(2*time.Second))
		return c
	}
	fellBack := func() Case {
		c, _ := openCase(t).ApplyFallback(t0.Add(90 * time.Second))
		return c
	}
	tests := []struct {
		name       string
		c          Case
		wantBy     string
		wantReason string
		want       events.Proposal
		comment    string
	}{
		{"approved", approved(), "ivanova", ReasonOfficerApproved,
			events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 2_000_000_00}, "Подтверждён доход"},
		{"rejected", rejected(), "ivanova", ReasonOfficerRejected, events.Proposal{Outcome: events.OutcomeRejected}, "нет"},
		{"fallback", fellBack(), events.DecidedByFallback, ReasonFallback,
			events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "A", MaxAmount: 300_000_00}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := tt.c.Event()
			if err != nil {
				t.Fatal(err)
			}
			if ev.DecidedBy != tt.wantBy || ev.Decision != tt.want || ev.Comment != tt.comment {
				t.Errorf("event = %+v", ev)
			}
			if got, want := ev.ReasonCodes, append(slices.Clone(base), tt.wantReason); !slices.Equal(got, want) {
				t.Errorf("reasons = %v, want %v", got, want)
			}
			if ev.SearchID != "0b6c1f4e-5d2a-4e8b-9c3f-7a1d2e4b6c80" || ev.PolicyVersion != "2026-12.1" || ev.Amount == nil || *ev.Amount != 2_500_000_00 {
				t.Errorf("event lost the referral's fields: %+v", ev)
			}
		})
	}
	if _, err := openCase(t).Event(); err == nil {
		t.Error("an open case has an event")
	}
}

func TestCaseRoundTripsThroughJSON(t *testing.T) {
	c, _ := openCase(t).Take("ivanova", t0.Add(time.Second))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got Case
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.TakenBy != "ivanova" || !got.TakenAt.Equal(c.TakenAt) || got.State != StateTaken || got.Client == nil || got.Client.BureauGrade != "A" {
		t.Errorf("round trip = %+v", got)
	}
}

func TestTakenEvent(t *testing.T) {
	if _, err := openCase(t).TakenEvent(); err == nil {
		t.Error("an open case has a taken event")
	}
	if _, err := openCase(t).MarkTakeAnnounced(); err == nil {
		t.Error("an open case was marked announced as taken")
	}
	taken, err := openCase(t).Take("ivanova", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	decided, err := taken.Decide("ivanova", Verdict{Comment: "нет"}, t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fellBack, err := taken.ApplyFallback(t0.Add(90 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := events.UnderwritingTaken{SearchID: "0b6c1f4e-5d2a-4e8b-9c3f-7a1d2e4b6c80", TakenBy: "ivanova", TakenAt: t0.Add(time.Second)}
	for name, c := range map[string]Case{"taken": taken, "decided by the officer": decided, "decided by the fallback": fellBack} {
		got, err := c.TakenEvent()
		if err != nil || got != want {
			t.Errorf("%s: TakenEvent() = %+v, %v; want %+v", name, got, err, want)
		}
		marked, err := c.MarkTakeAnnounced()
		if err != nil || !marked.TakeAnnounced || marked.State != c.State {
			t.Errorf("%s: MarkTakeAnnounced() = %+v, %v", name, marked, err)
		}
	}
	// A take of a case one already holds keeps whether it was announced.
	marked, _ := taken.MarkTakeAnnounced()
	again, err := marked.Take("ivanova", t0.Add(3*time.Second))
	if err != nil || !again.TakeAnnounced || !again.TakenAt.Equal(t0.Add(time.Second)) {
		t.Errorf("taking again = %+v, %v", again, err)
	}
}
