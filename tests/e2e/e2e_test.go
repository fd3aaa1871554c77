// Package e2e drives the all-in-one over real HTTP, with a real embedded NATS server, the way
// Yandex would: every example of the partner contract, duplicates, conflicts, a restart and a
// poison event. Every answer is checked against contracts/openapi.yaml.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/apicheck"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/logging"
	"github.com/loanflow/loanflow/pkg/natstest"
)

const (
	apiPath = "/integrations/api/banking/loan_approval"
	token   = "e2e-token"
	// publicURL is the address proposal links are made for.
	publicURL = "https://partner.loanflow.example"
	// Phones of testdata/clients.csv.
	knownA     = "9330445040" // grade A, salary client: several loan offers
	stopListed = "9037654321"
	unknown    = "9001234567" // not in the file: pre-approved with conservative limits
)

// system is one running all-in-one.
type system struct {
	t      *testing.T
	sys    *allinone.System
	base   string
	check  *apicheck.Validator
	cancel func()
}

type options struct {
	dir    string
	budget time.Duration
	// logs, when set, receives every log line at debug level.
	logs io.Writer
	// ops, when set, receives every service's metrics and readiness checks.
	ops *admin.Ops
	// configure, when set, changes the configuration last, before the system starts.
	configure func(*allinone.Config)
}

// syncBuffer is a bytes.Buffer safe for the services' concurrent log writes.
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

// start runs the all-in-one on free ports and a data directory, stopped when the test ends.
func start(t *testing.T, o options) *system {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	var cfg allinone.Config
	cfg.DataDir = o.dir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSAddr = "127.0.0.1:0"
	cfg.ClientsFile = "testdata/clients.csv"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.logs != nil {
		// The processes' own logger (pkg/logging), as LOG_LEVEL=debug LOG_FORMAT=json builds it.
		logger, err := logging.New(o.logs, logging.Settings{Level: "debug", Format: "json"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger = logger
	}
	cfg.Ops = o.ops
	cfg.Ingress.BearerTokens = []string{token}
	cfg.Ingress.PhoneKey = "e2e-phone-key-0123456789"
	cfg.Ingress.BasePath = "/integrations"
	cfg.Ingress.SyncBudget = o.budget
	cfg.Ingress.RetryAfter = time.Second
	cfg.Ingress.MaxBodyBytes = 65536
	// Proposal links name ingress's public https address, as in production; tests follow them
	// on the plain-HTTP listener (see follow).
	cfg.Offers.PublicURL = publicURL
	// A console account with a cheap hash, so that each start does not spend a second in
	// bcrypt; the password is e2e-officer-password.
	cfg.Console.Users = []string{"officer:officer:$2a$04$9BzkoD9IZvwAq74HX71DHepCq6p19hWcMKbUCMpPCI89BkZiUapJ2"}
	for _, b := range []*bus.Settings{&cfg.Ingress.Bus, &cfg.Scoring.Bus, &cfg.Offers.Bus, &cfg.Audit.Bus, &cfg.Console.Bus} {
		*b = bus.Settings{Replicas: 1, PublishTimeout: 2 * time.Second, MaxDeliver: 3, BackOff: []time.Duration{50 * time.Millisecond},
			AckWait: 10 * time.Second, Concurrency: 8, ShutdownTimeout: 5 * time.Second}
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := allinone.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start all-in-one: %v", err)
	}
	check, err := apicheck.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, sys: sys, base: "http://" + sys.HTTPAddr(), check: check}
	var once sync.Once
	s.cancel = func() {
		once.Do(func() {
			cancel()
			if err := sys.Wait(); err != nil {
				t.Errorf("all-in-one stopped with: %v", err)
			}
		})
	}
	t.Cleanup(s.cancel)
	return s
}

// answer is one HTTP answer, already checked against the OpenAPI document.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (s *system) do(method, path, tok, body string) answer {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if !json.Valid(raw) {
		s.t.Fatalf("%s %s: answer is not strict JSON: %q", method, path, raw)
	}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		s.t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
	}
	if err := s.check.Response(method, path, a.status, a.header, raw); err != nil {
		s.t.Errorf("%s %s: answer %d breaks the OpenAPI contract: %v\n%s", method, path, a.status, err, raw)
	}
	return a
}

func (s *system) post(body string) answer {
	s.t.Helper()
	return s.do(http.MethodPost, apiPath, token, body)
}

// until polls search_id until the answer is no longer pending.
func (s *system) until(searchID string) answer {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := s.post(`{"search_id":"` + searchID + `"}`)
		if a.status != http.StatusOK || a.body["status"] != "pending" {
			return a
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s still pending after 30s", searchID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func loan(searchID, phone string, amount float64, term int) string {
	b, _ := json.Marshal(map[string]any{"search_id": searchID, "product_type": "loan", "phone_number": phone, "amount": amount, "term": term})
	return string(b)
}

func card(searchID, phone string) string {
	return `{"search_id":"` + searchID + `","product_type":"credit_card","phone_number":"` + phone + `"}`
}

// offers decodes the data of a done answer.
func offers(t *testing.T, a answer) []partnerapi.Offer {
	t.Helper()
	var d partnerapi.DoneAnswer
	if err := json.Unmarshal(a.raw, &d); err != nil {
		t.Fatal(err)
	}
	return d.Data
}

func TestLoanForUnknownClientIsPreApproved(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	a := s.post(loan("e2e-loan-1", unknown, 200000, 24))
	if a.status != http.StatusOK || a.body["status"] != "done" || a.body["decision"] != "has_approve" || a.body["search_id"] != "e2e-loan-1" {
		t.Fatalf("answer %d %s, want done has_approve", a.status, a.raw)
	}
	got := offers(t, a)
	if len(got) == 0 {
		t.Fatal("no offers")
	}
	for _, o := range got {
		if o.ProductType != partnerapi.ProductLoan || o.Decision != partnerapi.OfferPreApproved {
			t.Errorf("offer %+v: want a pre-approved loan", o)
		}
		if o.Term == nil || o.Payment.Min == nil || o.Payment.Max == nil || o.GracePeriod != nil || o.Payment.CCRate != nil {
			t.Errorf("loan offer fields: %s", a.raw)
		}
		if !strings.Contains(o.ProposalLink.Link+o.ProposalLink.Deep, "e2e-loan-1") {
			t.Errorf("proposal link %+v does not carry the search_id", o.ProposalLink)
		}
	}
	if name, _ := a.body["name"].(string); name == "" {
		t.Error("no bank name")
	}
	if strings.Contains(string(a.raw), `\u0026`) {
		t.Errorf("links are HTML-escaped: %s", a.raw)
	}
}

func TestCreditCard(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	a := s.post(card("e2e-card-1", unknown))
	if a.status != http.StatusOK || a.body["status"] != "done" || a.body["decision"] != "has_approve" {
		t.Fatalf("answer %d %s", a.status, a.raw)
	}
	for _, o := range offers(t, a) {
		if o.ProductType != partnerapi.ProductCreditCard || o.GracePeriod == nil || o.Payment.CCRate == nil || o.Term != nil {
			t.Errorf("card offer: %s", a.raw)
		}
	}
}

func TestKnownClientGetsSeveralFullyApprovedOffers(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	a := s.post(loan("e2e-several-1", knownA, 1500000, 36))
	if a.status != http.StatusOK || a.body["decision"] != "has_approve" {
		t.Fatalf("answer %d %s", a.status, a.raw)
	}
	got := offers(t, a)
	if len(got) < 2 {
		t.Fatalf("offers = %d, want several: %s", len(got), a.raw)
	}
	for i, o := range got {
		if o.Decision != partnerapi.OfferFullApproved {
			t.Errorf("offer %d decision %s, want full_approved", i, o.Decision)
		}
		if i > 0 && o.Amount.Min <= got[i-1].Amount.Max {
			t.Errorf("offers %d and %d overlap: %v / %v", i-1, i, got[i-1].Amount, o.Amount)
		}
	}
}

func TestStopListedClientIsRejected(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	a := s.post(loan("e2e-reject-1", stopListed, 100000, 12))
	if a.status != http.StatusOK || a.body["status"] != "done" || a.body["decision"] != "rejected" {
		t.Fatalf("answer %d %s, want done rejected", a.status, a.raw)
	}
	if v, present := a.body["data"]; !present || v != nil {
		t.Errorf(`data = %v (present %v), want "data": null`, v, present)
	}
}

func TestAsyncThenPoll(t *testing.T) {
	s := start(t, options{budget: 0})
	a := s.post(loan("e2e-async-1", unknown, 100000, 12))
	if a.status != http.StatusOK || !reflect.DeepEqual(a.body, map[string]any{"search_id": "e2e-async-1", "status": "pending"}) {
		t.Fatalf("first answer %d %s, want pending", a.status, a.raw)
	}
	if a.header.Get("Retry-After") == "" {
		t.Error("pending answer without Retry-After")
	}
	done := s.until("e2e-async-1")
	if done.status != http.StatusOK || done.body["status"] != "done" {
		t.Fatalf("after polling: %d %s", done.status, done.raw)
	}
	get := s.do(http.MethodGet, apiPath+"/e2e-async-1", token, "")
	if !reflect.DeepEqual(get.body, done.body) {
		t.Errorf("GET answer %s differs from the poll's %s", get.raw, done.raw)
	}
}

func TestBadRequestAndNotFound(t *testing.T) {
	s := start(t, options{budget: time.Second})
	a := s.post(`{"search_id":"e2e-bad-1","product_type":"loan","phone_number":"93304450","amount":"500000.00$","term":24}`)
	if a.status != http.StatusBadRequest || !reflect.DeepEqual(a.body["properties"], []any{"phone_number", "amount"}) {
		t.Errorf("bad example: %d %s", a.status, a.raw)
	}
	a = s.post(`{"search_id":"e2e-never-sent"}`)
	if a.status != http.StatusNotFound || a.body["message"] != "Заявок с таким search_id не найдено" {
		t.Errorf("unknown poll: %d %s", a.status, a.raw)
	}
	if a := s.do(http.MethodPost, apiPath, "", loan("e2e-auth", unknown, 1000, 12)); a.status != http.StatusForbidden || a.body["search_id"] != "e2e-auth" {
		t.Errorf("no token: %d %s", a.status, a.raw)
	}
}

func TestConcurrentDuplicateIsScoredOnce(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	const n = 16
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = s.post(loan("e2e-dup-1", unknown, 150000, 12)) }()
	}
	wg.Wait()
	final := s.until("e2e-dup-1")
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("request %d: %d %s", i, a.status, a.raw)
		}
		if a.body["status"] == "done" && !reflect.DeepEqual(a.body, final.body) {
			t.Errorf("request %d answered %s, final answer is %s", i, a.raw, final.raw)
		}
	}
	counts := s.eventCounts("e2e-dup-1")
	for _, typ := range []string{events.TypeApplicationReceived, events.TypeApplicationScored, events.TypeDecisionMade} {
		if counts[typ] != 1 {
			t.Errorf("%s published %d times, want 1", typ, counts[typ])
		}
	}
}

func TestConflictingRepeat(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	first := s.post(loan("e2e-conflict-1", unknown, 150000, 12))
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	a := s.post(loan("e2e-conflict-1", unknown, 150000, 18))
	if a.status != http.StatusBadRequest || !reflect.DeepEqual(a.body["properties"], []any{"search_id"}) {
		t.Errorf("conflicting repeat: %d %s", a.status, a.raw)
	}
	if again := s.post(loan("e2e-conflict-1", unknown, 150000, 12)); !reflect.DeepEqual(again.body, s.until("e2e-conflict-1").body) {
		t.Errorf("identical repeat answered %s", again.raw)
	}
}

func TestRestartKeepsAnswers(t *testing.T) {
	dir := t.TempDir()
	s := start(t, options{dir: dir, budget: 2 * time.Second})
	before := s.until(s.post(loan("e2e-restart-1", knownA, 300000, 24)).body["search_id"].(string))
	if before.body["status"] != "done" {
		t.Fatalf("before restart: %s", before.raw)
	}
	s.cancel()

	s2 := start(t, options{dir: dir, budget: 2 * time.Second})
	after := s2.post(`{"search_id":"e2e-restart-1"}`)
	if !reflect.DeepEqual(after.body, before.body) {
		t.Errorf("after restart %s, before %s", after.raw, before.raw)
	}
	// A repeat after the restart is still recognised, not scored again.
	if again := s2.post(loan("e2e-restart-1", knownA, 300000, 24)); !reflect.DeepEqual(again.body, before.body) {
		t.Errorf("repeat after restart: %s", again.raw)
	}
	if got := s2.eventCounts("e2e-restart-1")[events.TypeApplicationReceived]; got != 1 {
		t.Errorf("received events = %d, want 1", got)
	}
}

func TestPoisonEventEndsIn500(t *testing.T) {
	ops := admin.NewOps()
	s := start(t, options{budget: time.Second, ops: ops})
	nc, err := nats.Connect(s.sys.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A received event no stage can decode, for an application nobody polled yet.
	msg := message.NewMessage("poison-e2e", []byte(`{"search_id": 12, "amount": "lots"`))
	msg.Metadata.Set(events.HeaderSearchID, "e2e-poison-1")
	msg.Metadata.Set(events.HeaderEventType, events.TypeApplicationReceived)
	if err := bus.NewPublisher(js, 2*time.Second).Publish(events.TypeApplicationReceived, msg); err != nil {
		t.Fatal(err)
	}
	a := s.until("e2e-poison-1")
	deadline := time.Now().Add(10 * time.Second)
	for a.status == http.StatusNotFound && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		a = s.until("e2e-poison-1")
	}
	if a.status != http.StatusInternalServerError || a.body["search_id"] != "e2e-poison-1" || a.body["message"] == "" {
		t.Fatalf("poll of a poisoned application: %d %s, want 500 with a message", a.status, a.raw)
	}
	if got := s.eventCounts("e2e-poison-1")[events.TypeApplicationFailed]; got != 1 {
		t.Errorf("failed events = %d, want 1", got)
	}
	// An operator sees it on /metrics: one dead letter of scoring's, poison, given up on at
	// its first delivery.
	adm := httptest.NewServer(admin.Handler(ops, false))
	defer adm.Close()
	metrics := get(t, adm.URL+"/metrics")
	if v, ok := sample(t, metrics, `loanflow_dead_letters_total{reason="`+events.ReasonPoison+`",stage="scoring"}`); v != 1 {
		t.Errorf("scoring's poison dead letters = %v (present %v), want 1", v, ok)
	}
	if v, ok := sample(t, metrics, `loanflow_consumer_redeliveries_total{consumer="`+topology.ConsumerScoring+`"}`); ok {
		t.Errorf("scoring redeliveries = %v, want none: a poison event is not retried", v)
	}
}

func TestNoClearPhoneAnywhere(t *testing.T) {
	logs := &syncBuffer{}
	s := start(t, options{budget: 2 * time.Second, logs: logs})
	phones := []string{knownA, unknown, stopListed}
	for i, p := range phones {
		s.until(s.post(loan("e2e-pd-"+string(rune('a'+i)), p, 100000, 12)).body["search_id"].(string))
	}
	s.post(card("e2e-pd-card", knownA))
	js := s.js()
	ctx := context.Background()
	// Audit records are written after the events: wait until every event has its record.
	natstest.WaitFor(t, "audit to catch up", func() bool {
		loans, _ := js.Stream(ctx, topology.StreamLoans)
		audit, _ := js.Stream(ctx, topology.StreamAudit)
		li, err1 := loans.Info(ctx)
		ai, err2 := audit.Info(ctx)
		return err1 == nil && err2 == nil && ai.State.Msgs >= li.State.Msgs
	})
	// A bad request and an unknown poll log too.
	s.post(`{"search_id":"e2e-pd-bad","product_type":"loan","phone_number":"` + knownA + `","amount":"x","term":12}`)
	for _, p := range phones {
		if strings.Contains(logs.String(), p) {
			t.Errorf("the logs hold the clear phone %s", p)
		}
	}
	if !strings.Contains(logs.String(), apiPath) {
		t.Error("the log capture saw nothing: the scan proves nothing")
	}
	for _, name := range []string{topology.StreamLoans, topology.StreamAudit, "KV_" + topology.BucketDecisions, "KV_" + topology.BucketClients, "KV_" + topology.BucketAuditCheckpoints} {
		for _, m := range s.streamMessages(name) {
			for _, p := range phones {
				if strings.Contains(string(m.Data), p) || strings.Contains(m.Subject, p) {
					t.Errorf("%s holds the clear phone %s on %s: %s", name, p, m.Subject, m.Data)
				}
			}
		}
	}
}

func (s *system) js() jetstream.JetStream {
	s.t.Helper()
	nc, err := nats.Connect(s.sys.NATSURL())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return js
}

// streamMessages reads every message of a stream.
func (s *system) streamMessages(name string) []*jetstream.RawStreamMsg {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.js().Stream(ctx, name)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// eventCounts counts the LOANS events of one application by type.
func (s *system) eventCounts(searchID string) map[string]int {
	s.t.Helper()
	out := map[string]int{}
	for _, m := range s.streamMessages(topology.StreamLoans) {
		if m.Header.Get(events.HeaderSearchID) == searchID {
			out[m.Subject]++
		}
	}
	return out
}
