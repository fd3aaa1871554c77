package offers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/offers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startOffers(t *testing.T) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	srv := natstest.Start(t)
	cfg := offers.Config{Bus: natstest.Settings(srv.ClientURL()), Logger: quiet}
	_, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.EnsureBucket(context.Background(), js, topology.DecisionsBucket(topology.DefaultOptions()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- offers.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("offers.Run: %v", err)
		}
	})
	return js, kv
}

func scored(t *testing.T, js jetstream.JetStream, ev events.ApplicationScored) {
	t.Helper()
	msg, err := bus.NewEvent(events.TypeApplicationScored, ev.SearchID, bus.Trace{}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, time.Second).Publish(events.TypeApplicationScored, msg); err != nil {
		t.Fatal(err)
	}
}

func record(t *testing.T, kv jetstream.KeyValue, searchID string) decisions.Record {
	t.Helper()
	var rec decisions.Record
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		e, err := kv.Get(context.Background(), searchID)
		if err == nil {
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Final() {
				return rec
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no final record for %s", searchID)
	return rec
}

func TestApprovedAndRejectedAnswers(t *testing.T) {
	js, kv := startOffers(t)
	term := 36
	scored(t, js, events.ApplicationScored{SearchID: "o-approved", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 1500000_00, PolicyVersion: "p"})
	scored(t, js, events.ApplicationScored{SearchID: "o-rejected", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeRejected, Grade: "A", ReasonCodes: []string{"STOP_LIST"}, PolicyVersion: "p"})
	scored(t, js, events.ApplicationScored{SearchID: "o-tiny", ProductType: partnerapi.ProductCreditCard,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "unknown", MaxAmount: 100_00, PolicyVersion: "p"})

	a := record(t, kv, "o-approved")
	if a.Status != decisions.StatusDone || a.Answer.Decision != partnerapi.DecisionHasApprove || len(a.Answer.Data) != 2 || a.Answer.Name == "" {
		t.Errorf("approved: %+v", a.Answer)
	}
	r := record(t, kv, "o-rejected")
	if r.Answer.Decision != partnerapi.DecisionRejected || r.Answer.Data != nil {
		t.Errorf("rejected: %+v", r.Answer)
	}
	tiny := record(t, kv, "o-tiny")
	if tiny.Answer.Decision != partnerapi.DecisionRejected {
		t.Errorf("approval below every product: %+v", tiny.Answer)
	}
	cons, err := js.OrderedConsumer(context.Background(), topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TypeDecisionMade}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]events.DecisionMade{}
	for len(seen) < 3 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("decision events: %v (have %d)", err, len(seen))
		}
		var made events.DecisionMade // fresh each time: Unmarshal reuses slices
		if err := json.Unmarshal(m.Data(), &made); err != nil {
			t.Fatal(err)
		}
		seen[made.SearchID] = made
	}
	if got := seen["o-tiny"].ReasonCodes; len(got) == 0 || got[len(got)-1] != "NO_MATCHING_PRODUCT" {
		t.Errorf("reason codes %v, want NO_MATCHING_PRODUCT", got)
	}
	if seen["o-approved"].CatalogVersion == "" || seen["o-approved"].PolicyVersion != "p" {
		t.Errorf("versions not recorded: %+v", seen["o-approved"])
	}
}

func TestFailedApplicationStaysFailed(t *testing.T) {
	js, kv := startOffers(t)
	now := time.Now().UTC()
	b, _ := json.Marshal(decisions.Record{SearchID: "o-failed", Status: decisions.StatusFailed, Failure: &decisions.Failure{Stage: "scoring", Reason: "timeout"}, CreatedAt: now, UpdatedAt: now})
	if _, err := kv.Create(context.Background(), "o-failed", b); err != nil {
		t.Fatal(err)
	}
	term := 12
	scored(t, js, events.ApplicationScored{SearchID: "o-failed", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "unknown", MaxAmount: 100000_00})
	scored(t, js, events.ApplicationScored{SearchID: "o-after", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeRejected})
	record(t, kv, "o-after") // the failed one was handled before it
	if rec := record(t, kv, "o-failed"); rec.Status != decisions.StatusFailed {
		t.Errorf("failed record overwritten: %+v", rec)
	}
}

func TestUnderwritingDecisionsBecomeAnswers(t *testing.T) {
	js, kv := startOffers(t)
	term := 60
	amount := partnerapi.Money(2_500_000_00)
	decided := func(ev events.UnderwritingDecided) {
		t.Helper()
		msg, err := bus.NewEvent(events.TypeUnderwritingDecided, ev.SearchID, bus.Trace{}, ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.NewPublisher(js, time.Second).Publish(events.TypeUnderwritingDecided, msg); err != nil {
			t.Fatal(err)
		}
	}
	decided(events.UnderwritingDecided{SearchID: "u-approved", ProductType: partnerapi.ProductLoan, Amount: &amount, Term: &term,
		Decision:  events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 2_000_000_00},
		DecidedBy: "ivanova", ReasonCodes: []string{"REFER_AMOUNT", "OFFICER_APPROVED"}, PolicyVersion: "p"})
	decided(events.UnderwritingDecided{SearchID: "u-rejected", ProductType: partnerapi.ProductLoan, Amount: &amount, Term: &term,
		Decision:  events.Proposal{Outcome: events.OutcomeRejected},
		DecidedBy: "ivanova", ReasonCodes: []string{"REFER_AMOUNT", "OFFICER_REJECTED"}, PolicyVersion: "p"})

	a := record(t, kv, "u-approved")
	if a.Answer.Decision != partnerapi.DecisionHasApprove || len(a.Answer.Data) == 0 {
		t.Fatalf("approved by an officer: %+v", a.Answer)
	}
	for _, o := range a.Answer.Data {
		if o.Decision != partnerapi.OfferFullApproved || o.Amount.Max > 2_000_000_00 {
			t.Errorf("offer %+v, want full_approved up to the officer's 2000000.00", o)
		}
	}
	if got := a.Answer.Data[len(a.Answer.Data)-1].Amount.Max; got != 2_000_000_00 {
		t.Errorf("largest offer up to %v, want the officer's 2000000.00", got)
	}
	if r := record(t, kv, "u-rejected"); r.Answer.Decision != partnerapi.DecisionRejected || r.Answer.Data != nil {
		t.Errorf("rejected by an officer: %+v", r.Answer)
	}
}
