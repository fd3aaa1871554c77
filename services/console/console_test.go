package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/console/consoletest"
	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

const (
	testPhoneKey = "console-test-phone-key-0123456789"
	testPassword = "correct horse battery"
)

// syncBuffer collects the service's logs for the tests to search.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one running console on a real embedded NATS server.
type env struct {
	url     string
	natsURL string
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	logs    *syncBuffer
	stop    func()
}

func accountsFor(t testing.TB) []string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"ivanova:officer:" + string(h), "petrov:officer:" + string(h), "auditor:auditor:" + string(h)}
}

// startConsole runs the console against natsURL until the test ends (or stop is called);
// opts change its configuration before it starts.
func startConsole(t testing.TB, natsURL string, opts ...func(*Config)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{
		Bus: natstest.Settings(natsURL), Listener: ln, Users: accountsFor(t), PhoneKey: testPhoneKey,
		SessionKey: "console-test-session-key-0123456789abcdef", SyncBudget: 250 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Listener != ln {
		ln.Close()
		ln = cfg.Listener
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("console.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	_, js, err := bus.Connect(natsURL, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var kv jetstream.KeyValue
	natstest.WaitFor(t, "the underwriting bucket", func() bool {
		kv, err = js.KeyValue(context.Background(), topology.BucketUnderwriting)
		return err == nil
	})
	// A listener on every interface is called on the loopback.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	u := "http://127.0.0.1:" + port
	natstest.WaitFor(t, "the console to listen", func() bool {
		resp, err := http.Get(u + "/signin")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return &env{url: u, natsURL: natsURL, js: js, kv: kv, logs: logs, stop: stop}
}

// referral is the contract's golden referred event with a fresh search_id and deadline.
func referral(t testing.TB, decideIn time.Duration) events.ApplicationReferred {
	t.Helper()
	b, err := os.ReadFile("../../contracts/testdata/events/loan.application.referred.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.ApplicationReferred
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ev.SearchID = fmt.Sprintf("%08x-5d2a-4e8b-9c3f-%012x", now.UnixNano()&0xffffffff, now.UnixNano()&0xffffffffffff)
	ev.ReceivedAt, ev.ReferredAt, ev.DecideBy = now, now, now.Add(decideIn)
	h, _ := pseudonym.New([]byte(testPhoneKey))
	ev.PhoneHash, ev.PhoneMask = h.Phone("9330445040"), pseudonym.Mask("9330445040")
	return ev
}

func publishReferral(t testing.TB, js jetstream.JetStream, ev events.ApplicationReferred) {
	t.Helper()
	msg, err := bus.NewEvent(events.TypeApplicationReferred, ev.SearchID, bus.Trace{CorrelationID: "corr-" + ev.SearchID[:8]}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.NewPublisher(js, 2*time.Second).Publish(events.TypeApplicationReferred, msg); err != nil {
		t.Fatal(err)
	}
}

func getCase(t testing.TB, kv jetstream.KeyValue, id string) (underwriting.Case, bool) {
	t.Helper()
	e, err := kv.Get(context.Background(), id)
	if err != nil {
		return underwriting.Case{}, false
	}
	var c underwriting.Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		t.Fatal(err)
	}
	return c, true
}

// stored is one event of the LOANS stream: its sequence and payload.
type stored struct {
	seq  uint64
	data []byte
}

// loansEvents returns every event of type eventType the LOANS stream holds for id, in order.
func loansEvents(t testing.TB, js jetstream.JetStream, eventType, id string) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{eventType}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for pending := info.NumPending; pending > 0; {
		m, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		md, _ := m.Metadata()
		pending = md.NumPending
		var ev struct {
			SearchID string `json:"search_id"`
		}
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.SearchID == id {
			out = append(out, stored{seq: md.Sequence.Stream, data: m.Data()})
		}
	}
	return out
}

// decidedEvents returns every loan.underwriting.decided.v1 the stream holds for id.
func decidedEvents(t testing.TB, js jetstream.JetStream, id string) []events.UnderwritingDecided {
	t.Helper()
	var out []events.UnderwritingDecided
	for _, m := range loansEvents(t, js, events.TypeUnderwritingDecided, id) {
		var ev events.UnderwritingDecided
		if err := json.Unmarshal(m.data, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// takenEvents returns every loan.underwriting.taken.v1 the stream holds for id.
func takenEvents(t testing.TB, js jetstream.JetStream, id string) []events.UnderwritingTaken {
	t.Helper()
	var out []events.UnderwritingTaken
	for _, m := range loansEvents(t, js, events.TypeUnderwritingTaken, id) {
		var ev events.UnderwritingTaken
		if err := json.Unmarshal(m.data, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// takenBeforeDecided checks the stream holds one taken event of officer for id, and that it
// comes before the one decided event.
func takenBeforeDecided(t testing.TB, js jetstream.JetStream, id, officer string) {
	t.Helper()
	taken := loansEvents(t, js, events.TypeUnderwritingTaken, id)
	decided := loansEvents(t, js, events.TypeUnderwritingDecided, id)
	if len(taken) != 1 || len(decided) != 1 {
		t.Fatalf("%d taken and %d decided events, want 1 and 1", len(taken), len(decided))
	}
	if taken[0].seq > decided[0].seq {
		t.Errorf("taken at stream sequence %d, after decided at %d", taken[0].seq, decided[0].seq)
	}
	if got := takenEvents(t, js, id)[0]; got.TakenBy != officer || got.TakenAt.IsZero() {
		t.Errorf("taken event = %+v, want taken by %s", got, officer)
	}
}

// newClient is a browser-like client of the console under test.
func newClient(t testing.TB, base string) *consoletest.Client { return consoletest.New(t, base) }

func TestOfficerTakesAndApproves(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	ev := referral(t, time.Minute)
	publishReferral(t, e.js, ev)
	natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })

	officer := newClient(t, e.url)
	officer.SignIn("ivanova", testPassword)
	natstest.WaitFor(t, "the case on the queue page", func() bool {
		_, body := officer.Do("GET", "/queue", nil)
		return strings.Contains(body, ev.SearchID)
	})
	page := "/cases/" + ev.SearchID
	_, body := officer.Do("GET", page, nil)
	for _, want := range []string{"93******40", "REFER_LARGE_AMOUNT", "id=\"take\"", "2\u00a0500\u00a0000,00\u00a0₽"} {
		if !strings.Contains(body, want) {
			t.Errorf("case page lacks %q", want)
		}
	}
	if strings.Contains(body, "9330445040") {
		t.Error("case page shows the phone in clear")
	}
	resp, _ := officer.Post(page, page+"/take", nil)
	if got, want := resp.Header.Get("Location"), page+"?msg=taken"; resp.StatusCode != http.StatusSeeOther || got != want {
		t.Fatalf("take: %d to %q, want 303 to %q", resp.StatusCode, got, want)
	}
	if got := takenEvents(t, e.js, ev.SearchID); len(got) != 1 || got[0].TakenBy != "ivanova" {
		t.Errorf("taken events = %+v, want one by ivanova", got)
	}
	if c, _ := getCase(t, e.kv, ev.SearchID); !c.TakeAnnounced {
		t.Error("the case does not record that its take was announced")
	}
	// Another officer sees it taken and cannot take or decide it.
	other := newClient(t, e.url)
	other.SignIn("petrov", testPassword)
	resp, _ = other.Post(page, page+"/take", nil)
	if got, want := resp.Header.Get("Location"), page+"?err=taken"; got != want {
		t.Errorf("second take: to %q, want %q", got, want)
	}
	resp, _ = other.Post(page, page+"/decide", url.Values{"verdict": {"reject"}, "comment": {"нет"}})
	if got, want := resp.Header.Get("Location"), page+"?err=taken"; got != want {
		t.Errorf("second officer's decision: to %q, want %q", got, want)
	}
	// Out of bounds, then right.
	resp, _ = officer.Post(page, page+"/decide", url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"2 500 000,01"}, "comment": {"x"}})
	if got, want := resp.Header.Get("Location"), page+"?err=amount"; got != want {
		t.Errorf("out of bounds: to %q, want %q", got, want)
	}
	resp, _ = officer.Post(page, page+"/decide", url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"2 000 000"}, "comment": {"Подтверждён доход"}})
	if got, want := resp.Header.Get("Location"), page+"?msg=decided"; got != want {
		t.Fatalf("decide: to %q, want %q", got, want)
	}
	got := decidedEvents(t, e.js, ev.SearchID)
	if len(got) != 1 {
		t.Fatalf("%d decided events, want 1", len(got))
	}
	d := got[0]
	if d.DecidedBy != "ivanova" || d.Decision.MaxAmount != 2_000_000_00 || d.Decision.Approval != "full_approved" || d.Comment != "Подтверждён доход" {
		t.Errorf("decided event = %+v", d)
	}
	if last := d.ReasonCodes[len(d.ReasonCodes)-1]; last != underwriting.ReasonOfficerApproved {
		t.Errorf("reasons = %v", d.ReasonCodes)
	}
	natstest.WaitFor(t, "the case to be announced", func() bool { c, _ := getCase(t, e.kv, ev.SearchID); return c.Announced })
	takenBeforeDecided(t, e.js, ev.SearchID, "ivanova")
	_, body = other.Do("GET", page, nil)
	if !strings.Contains(body, `id="decided-by">ivanova`) {
		t.Error("the case page does not show who decided")
	}
	if !strings.Contains(body, `<b>ivanova</b>`) {
		t.Error("the decided case's page does not show who took it")
	}
	if !strings.Contains(e.logs.String(), `"msg":"underwriting case decided"`) {
		t.Error("the decision is not logged")
	}
}

// refuseTaken makes the LOANS stream take every event but loan.underwriting.taken.v1, whose
// publish then fails as it would with the stream unreachable; the returned func restores it.
func refuseTaken(t testing.TB, js jetstream.JetStream) (restore func()) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, topology.StreamLoans)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	narrowed := cfg
	narrowed.Subjects = []string{"loan.application.>", "loan.decision.>", "loan.offer.>", events.TypeUnderwritingDecided}
	if _, err := js.UpdateStream(ctx, narrowed); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTakeWhosePublishFailed: a take whose loan.underwriting.taken.v1 was not published stands
// (the officer is told the record is delayed), and the event is owed: it goes out with the
// holder's next take, or before the decided event of the officer or of the fallback, once.
func TestTakeWhosePublishFailed(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	retried, decided, fellBack := referral(t, time.Minute), referral(t, time.Minute), referral(t, 4*time.Second)
	decided.SearchID += "-b"
	fellBack.SearchID += "-c"
	for _, ev := range []events.ApplicationReferred{retried, decided, fellBack} {
		publishReferral(t, e.js, ev)
		natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })
	}
	officer := newClient(t, e.url)
	officer.SignIn("ivanova", testPassword)

	restore := refuseTaken(t, e.js)
	for _, ev := range []events.ApplicationReferred{retried, decided, fellBack} {
		page := "/cases/" + ev.SearchID
		resp, _ := officer.Post(page, page+"/take", nil)
		if got, want := resp.Header.Get("Location"), page+"?msg=taken_pending"; got != want {
			t.Fatalf("take with the stream refusing: to %q, want %q", got, want)
		}
		c, _ := getCase(t, e.kv, ev.SearchID)
		if c.State != underwriting.StateTaken || c.TakenBy != "ivanova" || c.TakeAnnounced {
			t.Errorf("case after a take whose publish failed: state %s by %q, announced %v", c.State, c.TakenBy, c.TakeAnnounced)
		}
		_, body := officer.Do("GET", page+"?msg=taken_pending", nil)
		for _, want := range []string{`id="take-again"`, `id="decide-form"`} {
			if !strings.Contains(body, want) {
				t.Errorf("case page lacks %s", want)
			}
		}
	}
	if !strings.Contains(e.logs.String(), `"msg":"underwriting take not announced yet"`) {
		t.Error("the failed publish is not logged")
	}
	// Another officer still cannot take it.
	other := newClient(t, e.url)
	other.SignIn("petrov", testPassword)
	page := "/cases/" + retried.SearchID
	if resp, _ := other.Post(page, page+"/take", nil); resp.Header.Get("Location") != page+"?err=taken" {
		t.Errorf("second take: to %q", resp.Header.Get("Location"))
	}
	restore()
	for _, ev := range []events.ApplicationReferred{retried, decided, fellBack} {
		if n := len(takenEvents(t, e.js, ev.SearchID)); n != 0 {
			t.Fatalf("%d taken events while the stream refused them", n)
		}
	}

	t.Run("taken again", func(t *testing.T) {
		page := "/cases/" + retried.SearchID
		resp, _ := officer.Post(page, page+"/take", nil)
		if got, want := resp.Header.Get("Location"), page+"?msg=taken"; got != want {
			t.Fatalf("take again: to %q, want %q", got, want)
		}
		if c, _ := getCase(t, e.kv, retried.SearchID); !c.TakeAnnounced {
			t.Error("the take is not recorded as announced")
		}
		_, body := officer.Do("GET", page, nil)
		if strings.Contains(body, `id="take-again"`) {
			t.Error("the case page still offers to take again")
		}
		resp, _ = officer.Post(page, page+"/decide", url.Values{"verdict": {"reject"}, "comment": {"Доход не подтверждён"}})
		if got, want := resp.Header.Get("Location"), page+"?msg=decided"; got != want {
			t.Fatalf("decide: to %q, want %q", got, want)
		}
		takenBeforeDecided(t, e.js, retried.SearchID, "ivanova")
	})
	t.Run("decided", func(t *testing.T) {
		page := "/cases/" + decided.SearchID
		resp, _ := officer.Post(page, page+"/decide", url.Values{"verdict": {"approve"}, "approval": {"full_approved"}, "amount": {"2 000 000"}, "comment": {"Подтверждён доход"}})
		if got, want := resp.Header.Get("Location"), page+"?msg=decided"; got != want {
			t.Fatalf("decide: to %q, want %q", got, want)
		}
		takenBeforeDecided(t, e.js, decided.SearchID, "ivanova")
		if c, _ := getCase(t, e.kv, decided.SearchID); !c.TakeAnnounced || !c.Announced {
			t.Errorf("case announced: take %v, decision %v", c.TakeAnnounced, c.Announced)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		natstest.WaitFor(t, "the fallback", func() bool { return len(decidedEvents(t, e.js, fellBack.SearchID)) > 0 })
		takenBeforeDecided(t, e.js, fellBack.SearchID, "ivanova")
		if got := decidedEvents(t, e.js, fellBack.SearchID)[0]; got.DecidedBy != events.DecidedByFallback {
			t.Errorf("decided by %q, want the fallback", got.DecidedBy)
		}
	})
}

func TestFallbackAtDecideBy(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	ev := referral(t, 700*time.Millisecond)
	publishReferral(t, e.js, ev)
	natstest.WaitFor(t, "the fallback", func() bool { return len(decidedEvents(t, e.js, ev.SearchID)) > 0 })
	got := decidedEvents(t, e.js, ev.SearchID)
	if len(got) != 1 {
		t.Fatalf("%d decided events, want 1", len(got))
	}
	if got[0].DecidedBy != events.DecidedByFallback || got[0].Decision != ev.Fallback ||
		got[0].ReasonCodes[len(got[0].ReasonCodes)-1] != underwriting.ReasonFallback {
		t.Errorf("fallback event = %+v", got[0])
	}
	if n := len(takenEvents(t, e.js, ev.SearchID)); n != 0 {
		t.Errorf("%d taken events for a case nobody took", n)
	}
	if got[0].DecidedAt.Before(ev.DecideBy) {
		t.Errorf("fallback at %s, before decide_by %s", got[0].DecidedAt, ev.DecideBy)
	}
	natstest.WaitFor(t, "the referral to be acked", func() bool {
		info, err := e.js.Consumer(context.Background(), topology.StreamLoans, topology.ConsumerConsole)
		if err != nil {
			return false
		}
		ci, err := info.Info(context.Background())
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

func TestFallbackSurvivesRestart(t *testing.T) {
	srv := natstest.Start(t)
	e := startConsole(t, srv.ClientURL())
	ev := referral(t, 2*time.Second)
	publishReferral(t, e.js, ev)
	natstest.WaitFor(t, "the case", func() bool { _, ok := getCase(t, e.kv, ev.SearchID); return ok })
	e.stop()
	time.Sleep(time.Until(ev.DecideBy)) // the deadline passes with no console running
	if n := len(decidedEvents(t, e.js, ev.SearchID)); n != 0 {
		t.Fatalf("%d decided events with the console down", n)
	}
	e2 := startConsole(t, srv.ClientURL())
	natstest.WaitFor(t, "the fallback after the restart", func() bool { return len(decidedEvents(t, e2.js, ev.SearchID)) > 0 })
	if got := decidedEvents(t, e2.js, ev.SearchID); len(got) != 1 || got[0].DecidedBy != events.DecidedByFallback {
		t.Errorf("after restart: %+v", got)
	}
}

func TestRedeliveredReferralKeepsTheCase(t *testing.T) {
	e := startConsole(t, natstest.Start(t).ClientURL())
	st := &store{kv: e.kv, timeout: time.Second}
	c, err := underwriting.Open(referral(t, time.Minute), "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) { return c.Take("ivanova", time.Now()) }); err != nil {
		t.Fatal(err)
	}
	if err := st.create(ctx, c); err != nil { // the referral again
		t.Fatalf("second create: %v", err)
	}
	got, _, err := st.get(ctx, c.SearchID)
	if err != nil || got.State != underwriting.StateTaken || got.TakenBy != "ivanova" {
		t.Errorf("after a redelivery the case is %+v (%v)", got, err)
	}
}

// TestConcurrentOfficers races officers for one case through the bucket: exactly one takes
// it, and exactly one decision is recorded when the holder and the fallback decide at once.
func TestConcurrentOfficers(t *testing.T) {
	srv := natstest.Start(t)
	_, js, err := bus.Connect(srv.ClientURL(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.EnsureBucket(context.Background(), js, topology.UnderwritingBucket(topology.DefaultOptions()))
	if err != nil {
		t.Fatal(err)
	}
	st := &store{kv: kv, timeout: 2 * time.Second}
	ctx := context.Background()
	for round := range 5 {
		c, err := underwriting.Open(referral(t, time.Minute), "", "")
		if err != nil {
			t.Fatal(err)
		}
		c.SearchID = fmt.Sprintf("%s-%d", c.SearchID, round)
		if err := st.create(ctx, c); err != nil {
			t.Fatal(err)
		}
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = st.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) {
					return c.Take(fmt.Sprintf("officer%d", i), time.Now())
				})
			})
		}
		wg.Wait()
		winners, winner := 0, ""
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				winner = fmt.Sprintf("officer%d", i)
			case !errors.Is(err, underwriting.ErrTaken):
				t.Errorf("take: %v", err)
			}
		}
		if winners != 1 {
			t.Fatalf("%d officers took the case, want 1", winners)
		}
		// The holder decides while the fallback falls due (the clock is past DecideBy for it).
		var officerErr, fallbackErr error
		wg.Go(func() {
			_, officerErr = st.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) {
				return c.Decide(winner, underwriting.Verdict{Comment: "отказ"}, time.Now())
			})
		})
		wg.Go(func() {
			_, fallbackErr = st.update(ctx, c.SearchID, func(c underwriting.Case) (underwriting.Case, error) {
				return c.ApplyFallback(c.DecideBy)
			})
		})
		wg.Wait()
		if (officerErr == nil) == (fallbackErr == nil) {
			t.Fatalf("officer: %v, fallback: %v: want exactly one to decide", officerErr, fallbackErr)
		}
		for _, err := range []error{officerErr, fallbackErr} {
			if err != nil && !errors.Is(err, underwriting.ErrDecided) {
				t.Errorf("loser's error = %v, want ErrDecided", err)
			}
		}
	}
}

// TestReferralsBeyondTheDefaultAckPending: every referral stays un-acked until its decide_by,
// so more referrals than the default MaxAckPending (1024) are in flight at once at ~11/s. All
// of them must become cases at once, not once the oldest are decided.
func TestReferralsBeyondTheDefaultAckPending(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 1 100 referrals")
	}
	e := startConsole(t, natstest.Start(t).ClientURL())
	ctx := context.Background()
	cons, err := e.js.Consumer(ctx, topology.StreamLoans, topology.ConsumerConsole)
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.MaxAckPending; got < topology.ConsoleMaxAckPending {
		t.Errorf("the console consumer's MaxAckPending is %d, want at least %d", got, topology.ConsoleMaxAckPending)
	}
	const n = 1100
	base := referral(t, time.Minute)
	for i := range n {
		ev := base
		ev.SearchID = fmt.Sprintf("%s-%04d", base.SearchID[:23], i)
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := bus.NewEvent(events.TypeApplicationReferred, ev.SearchID, bus.Trace{CorrelationID: "c"}, json.RawMessage(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.NewPublisher(e.js, 2*time.Second).Publish(events.TypeApplicationReferred, msg); err != nil {
			t.Fatal(err)
		}
	}
	natstest.WaitFor(t, "every referral to become a case", func() bool {
		keys, err := e.kv.ListKeys(ctx)
		if err != nil {
			return false
		}
		got := 0
		for range keys.Keys() {
			got++
		}
		return got == n
	})
}
