package offers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/offerlink"
	"github.com/loanflow/loanflow/services/offers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const linkKey = "offers-test-link-key-0123"

func startOffers(t *testing.T) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	return startOffersWith(t, nil)
}

// startOffersWith runs offers with its configuration changed by edit first.
func startOffersWith(t *testing.T, edit func(*offers.Config)) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	srv := natstest.Start(t)
	cfg := offers.Config{Bus: natstest.Settings(srv.ClientURL()), Logger: quiet, LinkKeys: linkKey,
		PublicURL: "https://api.bank.example", LinkTTL: time.Hour}
	if edit != nil {
		edit(&cfg)
	}
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

// TestPaymentsStayWithinMaxPayment: the largest monthly payment scoring's debt-to-income
// allows travels in the scored event (and in an officer's or the fallback's decision), and no
// offer's payment.max exceeds it. The e2e suite's known client: 130 000 ₽ a month, approved for
// 2 683 779.64 ₽; without the bound the cash-large tier's 12-month corner would be 245 921 ₽.
func TestPaymentsStayWithinMaxPayment(t *testing.T) {
	js, kv := startOffers(t)
	term := 24
	scored(t, js, events.ApplicationScored{SearchID: "p-scored", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 2683779_64,
		MaxPayment: 130000_00, PolicyVersion: "p"})
	msg, err := bus.NewEvent(events.TypeUnderwritingDecided, "p-decided", bus.Trace{}, events.UnderwritingDecided{
		SearchID: "p-decided", ProductType: partnerapi.ProductLoan, Term: &term,
		Decision:  events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 2683779_64, MaxPayment: 130000_00},
		DecidedBy: "ivanova", ReasonCodes: []string{"REFER_AMOUNT", "OFFICER_APPROVED"}, PolicyVersion: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, time.Second).Publish(events.TypeUnderwritingDecided, msg); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p-scored", "p-decided"} {
		rec := record(t, kv, id)
		if len(rec.Answer.Data) != 2 {
			t.Fatalf("%s: %d offers, want both tiers", id, len(rec.Answer.Data))
		}
		for _, o := range rec.Answer.Data {
			if *o.Payment.Max > 130000_00 {
				t.Errorf("%s: offer %v–%v over %+v months pays up to %v, above the 130000.00 allowed", id, o.Amount.Min, o.Amount.Max, *o.Term, *o.Payment.Max)
			}
		}
		if large := rec.Answer.Data[1]; large.Amount.Max != 2683779_64 || large.Term.Min != 25 {
			t.Errorf("%s: cash-large %v over %+v months, want up to 2683779.64 from 25 months", id, large.Amount, *large.Term)
		}
	}
}

// decisionEvent waits for the loan.decision.made.v1 of searchID.
func decisionEvent(t *testing.T, js jetstream.JetStream, searchID string) events.DecisionMade {
	t.Helper()
	cons, err := js.OrderedConsumer(context.Background(), topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TypeDecisionMade}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("no decision for %s: %v", searchID, err)
		}
		var made events.DecisionMade
		if err := json.Unmarshal(m.Data(), &made); err != nil {
			t.Fatal(err)
		}
		if made.SearchID == searchID {
			return made
		}
	}
}

func TestProposalLinksAreSignedTokens(t *testing.T) {
	js, kv := startOffers(t)
	term := 24
	before := time.Now()
	scored(t, js, events.ApplicationScored{SearchID: "o-links", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "unknown", MaxAmount: 300000_00, PolicyVersion: "p"})
	rec := record(t, kv, "o-links")
	signer, err := offerlink.NewSigner([]byte(linkKey))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Answer.Data) == 0 {
		t.Fatalf("no offers: %+v", rec.Answer)
	}
	for _, o := range rec.Answer.Data {
		tok, ok := strings.CutPrefix(o.ProposalLink.Link, "https://api.bank.example/offers/")
		if !ok {
			t.Fatalf("link %q does not point at ingress's /offers/", o.ProposalLink.Link)
		}
		c, err := signer.Verify(tok, time.Now())
		if err != nil {
			t.Fatalf("web token: %v", err)
		}
		if c.SearchID != "o-links" || c.OfferID != "cash-standard" || c.Channel != offerlink.ChannelWeb ||
			!strings.HasPrefix(c.Target, "https://loanflow.example/apply?search_id=o-links&offer=cash-standard") {
			t.Errorf("web claims %+v", c)
		}
		if exp := c.ExpiresAt(); exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
			t.Errorf("expires %v, want an hour from now", exp)
		}
		u, err := url.Parse(o.ProposalLink.Deep)
		if err != nil || u.Scheme != "loanflow" || u.Query().Get("offer") != "cash-standard" {
			t.Fatalf("deep link %q", o.ProposalLink.Deep)
		}
		if c, err := signer.Verify(u.Query().Get("token"), time.Now()); err != nil || c.Channel != offerlink.ChannelDeep || c.SearchID != "o-links" {
			t.Errorf("deep token: %+v, %v", c, err)
		}
	}
}

func TestOffersFailingTheSelfCheckAreDroppedAndRecorded(t *testing.T) {
	def, err := os.ReadFile("internal/catalog/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A 50% card cap is below the default card's ПСК for unknown clients (up to 72%).
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	low := strings.Replace(string(def), "  credit_card: 80\n", "  credit_card: 50\n", 1)
	if low == string(def) {
		t.Fatal("the default catalog's card cap moved")
	}
	if err := os.WriteFile(file, []byte(low), 0o600); err != nil {
		t.Fatal(err)
	}
	ops := admin.NewOps()
	js, kv := startOffersWith(t, func(c *offers.Config) { c.CatalogFile, c.Ops = file, ops })
	// Loans keep their 40% cap: both tiers are sent, and count nothing.
	term := 24
	scored(t, js, events.ApplicationScored{SearchID: "o-kept", ProductType: partnerapi.ProductLoan, Term: &term,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 1000000_00,
		ReasonCodes: []string{"KNOWN_CLIENT"}, PolicyVersion: "p"})
	if r := record(t, kv, "o-kept"); r.Answer.Decision != partnerapi.DecisionHasApprove || len(r.Answer.Data) != 2 {
		t.Errorf("grade A loan: %+v, want both tiers", r.Answer)
	}
	scored(t, js, events.ApplicationScored{SearchID: "o-capped", ProductType: partnerapi.ProductCreditCard,
		Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "unknown", MaxAmount: 50000_00,
		ReasonCodes: []string{"UNKNOWN_CLIENT"}, PolicyVersion: "p"})
	if r := record(t, kv, "o-capped"); r.Answer.Decision != partnerapi.DecisionRejected || r.Answer.Data != nil {
		t.Errorf("answer %+v: the dropped card must not reach Yandex", r.Answer)
	}
	made := decisionEvent(t, js, "o-capped")
	if len(made.Dropped) != 1 || made.Dropped[0].OfferID != "card-120" || made.Dropped[0].Checks[0] != "psk_above_cap" {
		t.Errorf("dropped %+v, want card-120 above the cap", made.Dropped)
	}
	if got := made.ReasonCodes[len(made.ReasonCodes)-1]; got != "OFFERS_FAILED_CHECK" {
		t.Errorf("reasons %v, want OFFERS_FAILED_CHECK last", made.ReasonCodes)
	}
	// The decision is stored before its event is published, and counted as it is stored: one
	// dropped card, by the check it failed; the kept card counts nothing.
	const want = `
# HELP loanflow_offers_dropped_total Offers the self-check kept out of answers, by product type and failed check.
# TYPE loanflow_offers_dropped_total counter
loanflow_offers_dropped_total{check="psk_above_cap",product_type="credit_card"} 1
`
	if err := testutil.GatherAndCompare(ops.Registry, strings.NewReader(want), "loanflow_offers_dropped_total"); err != nil {
		t.Error(err)
	}
}

func TestCatalogReloadsOnSignal(t *testing.T) {
	def, err := os.ReadFile("internal/catalog/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	version := func(v string) string {
		return strings.Replace(string(def), `version: "2026-12.1"`, `version: "`+v+`"`, 1)
	}
	write(version("cat-1"))
	reload := make(chan os.Signal, 1)
	logs := &syncBuffer{}
	js, kv := startOffersWith(t, func(c *offers.Config) {
		c.CatalogFile, c.Reload, c.Logger = file, reload, slog.New(slog.NewTextHandler(logs, nil))
	})
	term := 12
	decide := func(searchID string) string {
		t.Helper()
		scored(t, js, events.ApplicationScored{SearchID: searchID, ProductType: partnerapi.ProductLoan, Term: &term,
			Outcome: events.OutcomeRejected, PolicyVersion: "p"})
		return decisionEvent(t, js, searchID).CatalogVersion
	}
	if got := decide("r-0"); got != "cat-1" {
		t.Fatalf("catalog %q, want cat-1", got)
	}
	write(version("cat-2"))
	reload <- syscall.SIGHUP
	for i := 1; ; i++ {
		got := decide(fmt.Sprintf("r-%d", i))
		if got == "cat-2" {
			break
		}
		if got != "cat-1" || i == 50 {
			t.Fatalf("catalog %q after reload", got)
		}
	}
	write("version: broken\n")
	reload <- syscall.SIGHUP
	reload <- syscall.SIGHUP
	if got := decide("r-after-bad"); got != "cat-2" {
		t.Errorf("after a broken reload: %q, want cat-2", got)
	}

	// The running version with different products is refused: the version a decision records
	// must name one catalog. The same file again, comments aside, is no change.
	changed := strings.Replace(version("cat-2"), `bank_name: "АО «Лоанфлоу Банк»"`, `bank_name: "АО «Другой Банк»"`, 1)
	if changed == version("cat-2") {
		t.Fatal("the default catalog's bank_name moved")
	}
	write(changed)
	reload <- syscall.SIGHUP
	natstest.WaitFor(t, "reload refused", func() bool { return strings.Contains(logs.String(), "catalog reload refused") })
	if got := decide("r-same-version"); got != "cat-2" {
		t.Errorf("after a same-version reload: %q, want cat-2", got)
	}
	if name := record(t, kv, "r-same-version").Answer.Name; name != "АО «Лоанфлоу Банк»" {
		t.Errorf("answer from bank %q: the refused catalog's content was used", name)
	}
	write("# the same catalog, with a comment\n" + version("cat-2"))
	reload <- syscall.SIGHUP
	natstest.WaitFor(t, "unchanged reload", func() bool { return strings.Contains(logs.String(), "catalog reload: unchanged") })
	if strings.Count(logs.String(), "catalog reload refused") != 1 {
		t.Errorf("a comment-only change was refused:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the service's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunRefusesMissingLinkKeys(t *testing.T) {
	srv := natstest.Start(t)
	for _, cfg := range []offers.Config{
		{Bus: natstest.Settings(srv.ClientURL()), Logger: quiet, PublicURL: "https://api.bank.example"},
		{Bus: natstest.Settings(srv.ClientURL()), Logger: quiet, PublicURL: "https://api.bank.example", LinkKeys: "short"},
		{Bus: natstest.Settings(srv.ClientURL()), Logger: quiet, PublicURL: "api.bank.example", LinkKeys: linkKey},
	} {
		// Bounded, so that a Run that starts anyway ends the test with an error, not a hang.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := offers.Run(ctx, cfg); err == nil {
			t.Errorf("Run(%+v) started", cfg)
		}
		cancel()
	}
}
