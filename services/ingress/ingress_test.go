package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/ingress"
)

const token = "test-token-1"

type env struct {
	base string
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	srv  *server.Server
	dir  string
}

// start runs ingress against a fresh embedded NATS server on a free port.
func start(t testing.TB, budget time.Duration, tweak ...func(*ingress.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	srv := natstest.StartIn(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cfg ingress.Config
	cfg.Bus = natstest.Settings(srv.ClientURL())
	cfg.BasePath = "/integrations"
	cfg.BearerTokens = []string{"old-token", token}
	cfg.PhoneKey = "0123456789abcdef-test-key"
	cfg.SyncBudget = budget
	cfg.RetryAfter = 2 * time.Second
	cfg.MaxBodyBytes = 4096
	cfg.Listener = ln
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Ops = admin.NewOps()
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ingress.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingress.Run: %v", err)
		}
	})
	_, js, err := bus.Connect(srv.ClientURL(), "test", cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{base: "http://" + ln.Addr().String() + "/integrations/api/banking/loan_approval", js: js, srv: srv, dir: dir}
	natstest.WaitFor(t, "ingress ready", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("ingress.Run returned at start: %v", err)
		default:
		}
		kv, err := js.KeyValue(context.Background(), topology.BucketDecisions)
		if err != nil {
			return false
		}
		e.kv = kv
		return len(cfg.Ops.Ready.Check(context.Background())) == 0
	})
	return e
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) post(t testing.TB, tok, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("answer is not a JSON object: %q", raw)
	}
	return r
}

// streamEvents returns the subjects and payloads of every event in LOANS.
func (e *env) streamEvents(t testing.TB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, topology.StreamLoans)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out[m.Subject] = append(out[m.Subject], string(m.Data))
	}
	return out
}

// decide plays offer assembly: it writes a done record for searchID.
func (e *env) decide(t *testing.T, searchID string, ans partnerapi.DoneAnswer) {
	t.Helper()
	ctx := context.Background()
	entry, err := e.kv.Get(ctx, searchID)
	if err != nil {
		t.Fatal(err)
	}
	var rec decisions.Record
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	rec.Status, rec.Answer = decisions.StatusDone, &ans
	b, _ := json.Marshal(rec)
	if _, err := e.kv.Update(ctx, searchID, b, entry.Revision()); err != nil {
		t.Fatal(err)
	}
}

func loanBody(sid string) string {
	return `{"search_id":"` + sid + `","product_type":"loan","phone_number":"9330445040","amount":500000,"term":24}`
}

func TestYandexBadExampleGives400WithExactProperties(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	r := e.post(t, token, `{"search_id":"bad-1","product_type":"loan","phone_number":"93304450","amount":"500000.00$","term":24}`)
	if r.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400: %s", r.status, r.raw)
	}
	want := map[string]any{
		"search_id":  "bad-1",
		"message":    "Поле phone_number должно содержать 10 цифр; поле amount должно быть числом",
		"properties": []any{"phone_number", "amount"},
	}
	if !reflect.DeepEqual(r.body, want) {
		t.Errorf("body = %v, want %v", r.body, want)
	}
	if got := e.streamEvents(t); len(got) != 0 {
		t.Errorf("invalid input published %v", got)
	}
}

func TestAuth(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	for _, tc := range []struct{ name, tok string }{{"missing", ""}, {"wrong", "nope"}} {
		r := e.post(t, tc.tok, loanBody("auth-1"))
		if r.status != http.StatusForbidden || r.body["search_id"] != "auth-1" || r.body["message"] == "" {
			t.Errorf("%s token: %d %v, want 403 naming search_id", tc.name, r.status, r.body)
		}
	}
	// Both configured tokens work (rotation).
	if r := e.post(t, "old-token", `{"search_id":"auth-2"}`); r.status != http.StatusNotFound {
		t.Errorf("old token: status %d, want 404 (authorised, unknown search_id)", r.status)
	}
	if got := e.streamEvents(t); len(got) != 0 {
		t.Errorf("unauthorised input published %v", got)
	}
}

func TestPollUnknownSearchID(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	r := e.post(t, token, `{"search_id":"never-sent"}`)
	want := map[string]any{"search_id": "never-sent", "message": "Заявок с таким search_id не найдено"}
	if r.status != http.StatusNotFound || !reflect.DeepEqual(r.body, want) {
		t.Errorf("got %d %v, want 404 %v", r.status, r.body, want)
	}
}

func TestPendingThenDoneByPollAndGet(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	r := e.post(t, token, loanBody("async-1"))
	if r.status != http.StatusOK || !reflect.DeepEqual(r.body, map[string]any{"search_id": "async-1", "status": "pending"}) {
		t.Fatalf("first answer %d %v, want pending", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	e.decide(t, "async-1", partnerapi.DoneAnswer{Name: "АО Банк", Decision: partnerapi.DecisionRejected})
	r = e.post(t, token, `{"search_id":"async-1"}`)
	want := map[string]any{"search_id": "async-1", "status": "done", "name": "АО Банк", "decision": "rejected", "data": nil}
	if r.status != http.StatusOK || !reflect.DeepEqual(r.body, want) {
		t.Errorf("poll: %d %v, want %v", r.status, r.body, want)
	}
	if _, present := r.body["data"]; !present {
		t.Error(`rejected answer has no "data": null`)
	}
	req, _ := http.NewRequest(http.MethodGet, e.base+"/async-1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if g := do(t, req); g.status != http.StatusOK || !reflect.DeepEqual(g.body, want) {
		t.Errorf("GET: %d %v, want %v", g.status, g.body, want)
	}
}

func TestDecisionWithinBudgetAnswersDone(t *testing.T) {
	e := start(t, 3*time.Second)
	// Play offer assembly: decide each received application as soon as it is published.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		cons, err := e.js.OrderedConsumer(ctx, topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TypeApplicationReceived}})
		if err != nil {
			return
		}
		for ctx.Err() == nil {
			m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			var ev events.ApplicationReceived
			_ = json.Unmarshal(m.Data(), &ev)
			e.decide(t, ev.SearchID, partnerapi.DoneAnswer{Name: "АО Банк", Decision: partnerapi.DecisionRejected})
		}
	}()
	start := time.Now()
	r := e.post(t, token, loanBody("sync-1"))
	if r.status != http.StatusOK || r.body["status"] != "done" {
		t.Fatalf("answer %d %v, want done within the budget", r.status, r.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v: the watcher did not wake the request", took)
	}
}

func TestConcurrentIdenticalApplicationsPublishOnce(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.post(t, token, loanBody("dup-1")).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, s)
		}
	}
	if got := len(e.streamEvents(t)[events.TypeApplicationReceived]); got != 1 {
		t.Errorf("received events = %d, want 1", got)
	}
}

func TestConflictingRepeat(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	if r := e.post(t, token, loanBody("conf-1")); r.status != http.StatusOK {
		t.Fatalf("first: %d", r.status)
	}
	r := e.post(t, token, `{"search_id":"conf-1","product_type":"loan","phone_number":"9330445040","amount":500001,"term":24}`)
	if r.status != http.StatusBadRequest || !reflect.DeepEqual(r.body["properties"], []any{"search_id"}) || r.body["search_id"] != "conf-1" {
		t.Errorf("conflict: %d %v, want 400 with properties [search_id]", r.status, r.body)
	}
	if got := len(e.streamEvents(t)[events.TypeApplicationReceived]); got != 1 {
		t.Errorf("received events = %d, want 1", got)
	}
}

func TestEventCarriesNoClearPhone(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	e.post(t, token, loanBody("pd-1"))
	evs := e.streamEvents(t)[events.TypeApplicationReceived]
	if len(evs) != 1 {
		t.Fatalf("events = %v", evs)
	}
	if strings.Contains(evs[0], "9330445040") {
		t.Errorf("event holds the clear phone: %s", evs[0])
	}
	var ev events.ApplicationReceived
	if err := json.Unmarshal([]byte(evs[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.PhoneMask != "93******40" || len(ev.PhoneHash) != 64 || ev.Amount == nil || *ev.Amount != 500000_00 || ev.Term == nil || *ev.Term != 24 {
		t.Errorf("event = %+v", ev)
	}
}

func TestOversizedBody(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	r := e.post(t, token, `{"search_id":"big","pad":"`+strings.Repeat("x", 5000)+`"}`)
	if r.status != http.StatusRequestEntityTooLarge || r.body["message"] == "" {
		t.Errorf("got %d %v, want 413 with a message", r.status, r.body)
	}
}

func TestMalformedJSON(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	r := e.post(t, token, `{"search_id": "x",}`)
	if r.status != http.StatusBadRequest || r.body["message"] == "" {
		t.Errorf("got %d %v, want 400 with a message", r.status, r.body)
	}
	if _, ok := r.body["search_id"]; !ok {
		t.Error("error body has no search_id")
	}
}

func TestFailedEventAnswers500(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	e.post(t, token, loanBody("fail-1"))
	msg, err := bus.NewEvent(events.TypeApplicationFailed, "fail-1", bus.Trace{}, events.ApplicationFailed{SearchID: "fail-1", Stage: "scoring", Reason: events.ReasonRetriesExhausted})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(e.js, time.Second).Publish(events.TypeApplicationFailed, msg); err != nil {
		t.Fatal(err)
	}
	var r reply
	natstest.WaitFor(t, "failed answer", func() bool { r = e.post(t, token, `{"search_id":"fail-1"}`); return r.status != http.StatusOK })
	if r.status != http.StatusInternalServerError || r.body["search_id"] != "fail-1" || r.body["message"] == "" {
		t.Errorf("got %d %v, want 500 with a message", r.status, r.body)
	}
	if strings.Contains(r.raw, "scoring") || strings.Contains(r.raw, "retries") {
		t.Errorf("500 leaks internals: %s", r.raw)
	}
}

func TestUnknownRouteAndMethodAreJSON(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	req, _ := http.NewRequest(http.MethodPut, e.base, bytes.NewReader(nil))
	if r := do(t, req); r.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", r.status)
	}
	req, _ = http.NewRequest(http.MethodGet, strings.TrimSuffix(e.base, "/loan_approval")+"/nope", nil)
	if r := do(t, req); r.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", r.status)
	}
}

func TestUndecidedApplicationFailsAtTheDeadline(t *testing.T) {
	e := start(t, 50*time.Millisecond, func(c *ingress.Config) { c.AnswerDeadline = 500 * time.Millisecond })
	if r := e.post(t, token, loanBody("late-1")); r.status != http.StatusOK || r.body["status"] != "pending" {
		t.Fatalf("first answer %d %v", r.status, r.body)
	}
	var r reply
	natstest.WaitFor(t, "the deadline", func() bool { r = e.post(t, token, `{"search_id":"late-1"}`); return r.status != http.StatusOK })
	if r.status != http.StatusInternalServerError || r.body["message"] == "" {
		t.Errorf("after the deadline: %d %v, want 500 with a message", r.status, r.body)
	}
	failed := e.streamEvents(t)[events.TypeApplicationFailed]
	if len(failed) != 1 || !strings.Contains(failed[0], `"reason":"timeout"`) {
		t.Errorf("failed events = %v, want one with reason timeout (audited like every event)", failed)
	}
}

func TestDecidedApplicationIsNotTimedOut(t *testing.T) {
	e := start(t, 50*time.Millisecond, func(c *ingress.Config) { c.AnswerDeadline = 300 * time.Millisecond })
	e.post(t, token, loanBody("quick-1"))
	e.decide(t, "quick-1", partnerapi.DoneAnswer{Name: "АО Банк", Decision: partnerapi.DecisionRejected})
	time.Sleep(600 * time.Millisecond) // past the deadline
	if r := e.post(t, token, `{"search_id":"quick-1"}`); r.status != http.StatusOK || r.body["status"] != "done" {
		t.Errorf("decided application after its deadline: %d %v", r.status, r.body)
	}
	if got := e.streamEvents(t)[events.TypeApplicationFailed]; len(got) != 0 {
		t.Errorf("failed events = %v, want none", got)
	}
}

func TestNATSDownAnswersQuicklyAndServesKnownAnswers(t *testing.T) {
	e := start(t, 50*time.Millisecond)
	e.post(t, token, loanBody("known-1"))
	e.decide(t, "known-1", partnerapi.DoneAnswer{Name: "АО Банк", Decision: partnerapi.DecisionRejected})
	natstest.WaitFor(t, "the answer", func() bool { return e.post(t, token, `{"search_id":"known-1"}`).body["status"] == "done" })

	port := e.srv.Addr().(*net.TCPAddr).Port
	e.srv.Shutdown()
	e.srv.WaitForShutdown()

	start := time.Now()
	r := e.post(t, token, loanBody("new-while-down"))
	if r.status != http.StatusInternalServerError || time.Since(start) > 3*time.Second {
		t.Errorf("new application with NATS down: %d after %v, want a quick 500", r.status, time.Since(start))
	}
	if r := e.post(t, token, `{"search_id":"known-1"}`); r.status != http.StatusOK || r.body["status"] != "done" {
		t.Errorf("poll of a known answer with NATS down: %d %v, want it served", r.status, r.body)
	}
	if r := e.post(t, token, `{"search_id":"unknown-while-down"}`); r.status != http.StatusInternalServerError {
		t.Errorf("poll of an unknown answer with NATS down: %d, want 500", r.status)
	}

	// NATS comes back where it was: ingress reconnects by itself and takes applications again.
	natstest.StartAt(t, e.dir, port)
	var r2 reply
	natstest.WaitFor(t, "ingress to take applications again", func() bool {
		r2 = e.post(t, token, loanBody("after-nats-returned"))
		return r2.status == http.StatusOK
	})
	if r2.body["status"] != "pending" {
		t.Errorf("after NATS returned: %v", r2.body)
	}
}

func TestApplicationsPastCapacityAreShedAt429(t *testing.T) {
	// One slot, and nobody decides: the first application holds its slot for the whole budget.
	e := start(t, 2*time.Second, func(c *ingress.Config) { c.MaxInFlight = 1 })
	first := make(chan reply, 1)
	go func() { first <- e.post(t, token, loanBody("shed-1")) }()
	natstest.WaitFor(t, "first application recorded", func() bool {
		_, err := e.kv.Get(context.Background(), "shed-1")
		return err == nil
	})
	r := e.post(t, token, loanBody("shed-2"))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.body["search_id"] != "shed-2" {
		t.Fatalf("second application: %d %v (Retry-After %q), want 429 with Retry-After 1", r.status, r.body, r.header.Get("Retry-After"))
	}
	// Polls are not shed, and the shed application was not recorded.
	if p := e.post(t, token, `{"search_id":"shed-2"}`); p.status != http.StatusNotFound {
		t.Errorf("poll of the shed application: %d, want 404 (nothing recorded)", p.status)
	}
	if got := (<-first).status; got != http.StatusOK {
		t.Errorf("first application: %d, want 200 pending", got)
	}
	// The slot is free again.
	if r := e.post(t, token, loanBody("shed-3")); r.status != http.StatusOK {
		t.Errorf("after the first one: %d, want 200", r.status)
	}
}
