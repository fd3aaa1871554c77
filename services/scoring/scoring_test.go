package scoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/scoring"
)

const phoneKey = "scoring-test-key-0123456789"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func config(url string) scoring.Config {
	return scoring.Config{
		Bus:      natstest.Settings(url),
		PhoneKey: phoneKey,
		Logger:   quiet,
	}
}

// startScoring imports the test clients and runs scoring; it returns a JetStream handle.
func startScoring(t *testing.T) jetstream.JetStream {
	t.Helper()
	return startScoringWith(t, nil)
}

// startScoringWith is startScoring with the configuration changed by edit first.
func startScoringWith(t *testing.T, edit func(*scoring.Config)) jetstream.JetStream {
	t.Helper()
	srv := natstest.Start(t)
	cfg := config(srv.ClientURL())
	if edit != nil {
		edit(&cfg)
	}
	stats, err := scoring.Import(context.Background(), cfg, "testdata/clients.csv", nil)
	if err != nil || stats.Imported != 5 {
		t.Fatalf("import: %+v, %v", stats, err)
	}
	return runScoring(t, srv.ClientURL(), cfg)
}

// runScoring runs scoring with cfg until the test ends; it returns a JetStream handle.
func runScoring(t *testing.T, url string, cfg scoring.Config) jetstream.JetStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- scoring.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scoring.Run: %v", err)
		}
	})
	_, js, err := bus.Connect(url, "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func received(t *testing.T, js jetstream.JetStream, searchID, phone string, product partnerapi.ProductType, amount partnerapi.Money, term int) {
	t.Helper()
	h, _ := pseudonym.New([]byte(phoneKey))
	ev := events.ApplicationReceived{
		SearchID: searchID, ProductType: product, PhoneHash: h.Phone(phone), PhoneMask: pseudonym.Mask(phone),
		ReceivedAt: time.Now().UTC(),
	}
	if product == partnerapi.ProductLoan {
		ev.Amount, ev.Term = &amount, &term
	}
	msg, err := bus.NewEvent(events.TypeApplicationReceived, searchID, bus.Trace{CorrelationID: "c-" + searchID}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, time.Second).Publish(events.TypeApplicationReceived, msg); err != nil {
		t.Fatal(err)
	}
}

// next waits for the first event of type typ about searchID.
func next(t *testing.T, js jetstream.JetStream, typ, searchID string, v any) jetstream.Msg {
	t.Helper()
	cons, err := js.OrderedConsumer(context.Background(), topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		if m.Headers().Get(events.HeaderSearchID) == searchID {
			if err := json.Unmarshal(m.Data(), v); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s for %s", typ, searchID)
	return nil
}

func TestDecisions(t *testing.T) {
	js := startScoring(t)
	tests := []struct {
		searchID, phone string
		product         partnerapi.ProductType
		amount          partnerapi.Money
		term            int
		outcome         events.Outcome
		approval        partnerapi.OfferDecision
		reason          string
	}{
		{"unknown-loan", "9001234567", partnerapi.ProductLoan, 200000_00, 24, events.OutcomeApproved, partnerapi.OfferPreApproved, "UNKNOWN_CLIENT"},
		{"known-loan", "9330445040", partnerapi.ProductLoan, 1500000_00, 36, events.OutcomeApproved, partnerapi.OfferFullApproved, "KNOWN_CLIENT"},
		{"stop-list", "9037654321", partnerapi.ProductLoan, 100000_00, 12, events.OutcomeRejected, "", "STOP_LIST"},
		{"grade-d", "9998887766", partnerapi.ProductCreditCard, 0, 0, events.OutcomeRejected, "", "GRADE_NOT_ELIGIBLE"},
		{"over-indebted", "9265550101", partnerapi.ProductLoan, 500000_00, 12, events.OutcomeRejected, "", "DTI_EXCEEDED"},
		{"term-too-long", "9001234567", partnerapi.ProductLoan, 100000_00, 240, events.OutcomeRejected, "", "TERM_OUT_OF_RANGE"},
	}
	for _, tt := range tests {
		received(t, js, tt.searchID, tt.phone, tt.product, tt.amount, tt.term)
	}
	for _, tt := range tests {
		t.Run(tt.searchID, func(t *testing.T) {
			var got events.ApplicationScored
			m := next(t, js, events.TypeApplicationScored, tt.searchID, &got)
			if got.Outcome != tt.outcome || got.Approval != tt.approval || !contains(got.ReasonCodes, tt.reason) {
				t.Errorf("scored %+v, want %s %s with %s", got, tt.outcome, tt.approval, tt.reason)
			}
			if got.PolicyVersion == "" {
				t.Error("no policy version")
			}
			if c := m.Headers().Get(events.HeaderCorrelationID); c != "c-"+tt.searchID {
				t.Errorf("correlation id %q not carried over", c)
			}
		})
	}
}

func TestReferralCarriesWhatThePolicySaw(t *testing.T) {
	js := startScoringWith(t, func(c *scoring.Config) { c.AnswerDeadline = 100 * time.Second })
	// A known salary client asking above the default policy's 3 000 000 ₽ underwriting threshold.
	received(t, js, "refer-1", "9330445040", partnerapi.ProductLoan, 3_500_000_00, 84)
	received(t, js, "below-threshold", "9330445040", partnerapi.ProductLoan, 1_500_000_00, 36)

	var got events.ApplicationReferred
	m := next(t, js, events.TypeApplicationReferred, "refer-1", &got)
	wantClient := events.ClientFigures{MonthlyIncome: 250_000_00, MonthlyDebtPayments: 20_000_00, BureauGrade: "A", ClientSince: "2019-03-01", SalaryClient: true}
	if got.Client == nil || *got.Client != wantClient {
		t.Errorf("client figures %+v, want %+v", got.Client, wantClient)
	}
	// The suggestion carries the client's affordable payment too, so that an officer's approval
	// is priced within it.
	wantSuggested := events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferFullApproved, Grade: "A", MaxAmount: 5_000_000_00, MaxPayment: 130_000_00}
	if got.Suggested != wantSuggested || got.MinAmount != 30_000_00 || got.MaxAmount != 5_000_000_00 {
		t.Errorf("suggested %+v within %v..%v, want %+v within 30000.00..5000000.00", got.Suggested, got.MinAmount, got.MaxAmount, wantSuggested)
	}
	// The fallback carries the monthly payment the client can take on (250 000 × 60% − 20 000),
	// which offer assembly keeps its offers' payments within.
	wantFallback := events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: "A", MaxAmount: 300_000_00, MaxPayment: 130_000_00}
	if got.Fallback != wantFallback {
		t.Errorf("fallback %+v, want %+v", got.Fallback, wantFallback)
	}
	if !contains(got.ReasonCodes, "REFER_AMOUNT") || got.PolicyVersion == "" {
		t.Errorf("reasons %v, policy %q", got.ReasonCodes, got.PolicyVersion)
	}
	// The default policy gives officers 0.75 of the answer deadline.
	if d := got.DecideBy.Sub(got.ReceivedAt); d != 75*time.Second {
		t.Errorf("decide_by is %v after received_at, want 75s", d)
	}
	if got.PhoneMask != "93******40" || strings.Contains(string(m.Data()), "9330445040") {
		t.Errorf("referral shows the phone: %s", m.Data())
	}
	if c := m.Headers().Get(events.HeaderCorrelationID); c != "c-refer-1" {
		t.Errorf("correlation id %q", c)
	}

	// Below the threshold the policy decides; a referral is never also scored.
	var scored events.ApplicationScored
	next(t, js, events.TypeApplicationScored, "below-threshold", &scored)
	if scored.Outcome != events.OutcomeApproved {
		t.Errorf("below the threshold: %+v", scored)
	}
	if n := count(t, js, events.TypeApplicationScored, "refer-1"); n != 0 {
		t.Errorf("the referral was also scored %d times", n)
	}
}

func TestPolicyReloadsOnSignalWithoutLosingEvents(t *testing.T) {
	def, err := os.ReadFile("internal/policy/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(version string) {
		t.Helper()
		b := strings.Replace(string(def), `version: "2026-12.1"`, `version: "`+version+`"`, 1)
		if err := os.WriteFile(file, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("reload-1")
	reload := make(chan os.Signal, 1)
	js := startScoringWith(t, func(c *scoring.Config) { c.PolicyFile, c.Reload = file, reload })

	version := func(searchID string) string {
		t.Helper()
		received(t, js, searchID, "9161234567", partnerapi.ProductLoan, 100_000_00, 12)
		var got events.ApplicationScored
		next(t, js, events.TypeApplicationScored, searchID, &got)
		return got.PolicyVersion
	}
	if got := version("before"); got != "reload-1" {
		t.Fatalf("policy version %q, want reload-1", got)
	}

	// Reload while applications keep arriving: every one is scored, by one policy or the other.
	write("reload-2")
	reload <- syscall.SIGHUP
	var seen []string
	for i := 0; ; i++ {
		v := version(fmt.Sprintf("during-%d", i))
		seen = append(seen, v)
		if v == "reload-2" {
			break
		}
		if v != "reload-1" || i == 50 {
			t.Fatalf("versions seen %v, want reload-1 until reload-2", seen)
		}
	}

	// A broken file is refused and the policy in force stays.
	if err := os.WriteFile(file, []byte("version: broken\nloan: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- syscall.SIGHUP
	reload <- syscall.SIGHUP // the channel holds one: the second send returns once the first is taken
	if got := version("after-bad"); got != "reload-2" {
		t.Errorf("after a broken reload the version is %q, want reload-2", got)
	}
}

// count is how many events of type typ about searchID the stream holds.
func count(t *testing.T, js jetstream.JetStream, typ, searchID string) int {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return n
		}
		if m.Headers().Get(events.HeaderSearchID) == searchID {
			n++
		}
	}
}

func TestUndecodableEventFailsTheApplication(t *testing.T) {
	js := startScoring(t)
	if _, err := js.PublishMsg(context.Background(), newRaw("poison-s", []byte("{nope"))); err != nil {
		t.Fatal(err)
	}
	var f events.ApplicationFailed
	next(t, js, events.TypeApplicationFailed, "poison-s", &f)
	if f.Stage != "scoring" || f.Reason != events.ReasonPoison {
		t.Errorf("failure = %+v", f)
	}
}

// TestBadPolicyStopsBeforeConsuming has an application waiting on a provisioned consumer when
// scoring starts with a broken policy: Run fails naming the file, the line and the rule, and
// the consumer has handed out nothing.
func TestBadPolicyStopsBeforeConsuming(t *testing.T) {
	srv := natstest.Start(t)
	cfg := config(srv.ClientURL())
	ctx := context.Background()
	nc, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Declared as a deployment does, so that a Run that consumed would find the application.
	if err := bus.EnsureStreams(ctx, js, cfg.Bus.Topology()); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureConsumer(ctx, js, topology.ConsumerScoring, cfg.Bus.Retry()); err != nil {
		t.Fatal(err)
	}
	received(t, js, "waiting", "9001234567", partnerapi.ProductLoan, 100_000_00, 12)

	pf := newPolicyFile(t)
	// Line 42 of the default policy is loan.amount.max; 5000 is below loan.amount.min.
	pf.write("bad-1", "    max: 5000000\n  # The terms", "    max: 5000\n  # The terms")
	cfg.PolicyFile = pf.path
	runCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = scoring.Run(runCtx, cfg)
	want := pf.path + ":42: loan.amount.max must not be below loan.amount.min"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v, want an error with %q", err, want)
	}

	info, err := js.Consumer(ctx, topology.StreamLoans, topology.ConsumerScoring)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Delivered.Consumer != 0 || ci.NumPending != 1 || ci.NumAckPending != 0 {
		t.Errorf("consumer delivered %d, pending %d, awaiting ack %d; want 0, 1, 0", ci.Delivered.Consumer, ci.NumPending, ci.NumAckPending)
	}
	if n := count(t, js, events.TypeApplicationScored, "waiting"); n != 0 {
		t.Errorf("%d scored events with a policy that does not load", n)
	}
}

func TestImportReportsBadLinesAndStoresNoPhone(t *testing.T) {
	srv := natstest.Start(t)
	cfg := config(srv.ClientURL())
	stats, err := scoring.Import(context.Background(), cfg, "testdata/mixed.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Imported != 1 || stats.Rejected != 1 || len(stats.Errors) != 1 || stats.Errors[0].Line != 3 {
		t.Errorf("stats = %+v, want line 3 rejected", stats)
	}
	_, js, _ := bus.Connect(srv.ClientURL(), "test", quiet)
	kv, err := js.KeyValue(context.Background(), topology.BucketClients)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		e, _ := kv.Get(context.Background(), k)
		if strings.Contains(k, "9330445040") || strings.Contains(string(e.Value()), "9330445040") {
			t.Errorf("clients bucket holds the phone in clear: %s = %s", k, e.Value())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func newRaw(searchID string, data []byte) *nats.Msg {
	m := nats.NewMsg(events.TypeApplicationReceived)
	m.Data = data
	m.Header.Set(events.HeaderSearchID, searchID)
	m.Header.Set(events.HeaderEventType, events.TypeApplicationReceived)
	return m
}
