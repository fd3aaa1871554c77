package deploytest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/console"
	"github.com/loanflow/loanflow/services/console/consoletest"
	"github.com/loanflow/loanflow/services/ingress"
	"github.com/loanflow/loanflow/services/offers"
	"github.com/loanflow/loanflow/services/scoring"
)

const phoneKey = "deploytest-phone-key-0123456789"

// logger is quiet unless DEPLOYTEST_LOG is set.
func logger() *slog.Logger {
	if os.Getenv("DEPLOYTEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// runService runs one service until the test ends; its Run must then return cleanly.
func runService(t *testing.T, name string, run func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// TestServicesRunAsLeastPrivilegeUsers provisions the cluster as the admin (and imports a
// client profile, as the admin does), then runs the real ingress, scoring, offers, audit and
// console, each with its own credentials, TLS and LOANFLOW_PROVISION=false, takes one
// application over HTTP to a final answer and its audit records, and one referral through the
// console (an officer signs in, takes and approves it; ingress answers done with the officer's
// offer; the timeline, phone search and dashboard are read from AUDIT): none of it may meet a
// permission violation.
func TestServicesRunAsLeastPrivilegeUsers(t *testing.T) {
	c := startCluster(t)
	c.provision(t)
	importClient(t, c)
	log := logger()
	seen := map[string]*violations{}
	optsFor := func(user string) []nats.Option {
		seen[user] = &violations{}
		return []nats.Option{nats.ErrorHandler(seen[user].handler)}
	}
	ready := map[string]*admin.Ops{}
	ops := func(name string) *admin.Ops { ready[name] = admin.NewOps(); return ready[name] }

	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	// Every config is built here, before its service's goroutine starts.
	auditCfg := audit.Config{Bus: c.settings("audit"), PhoneKey: phoneKey, SigningKey: base64.StdEncoding.EncodeToString(seed),
		CheckpointInterval: 100 * time.Millisecond, Batch: 64, Logger: log, Ops: ops("audit"), NATSOptions: optsFor("audit")}
	runService(t, "audit", func(ctx context.Context) error { return audit.Run(ctx, auditCfg) })
	scoringCfg := scoring.Config{Bus: c.settings("scoring"), Logger: log, Ops: ops("scoring"), NATSOptions: optsFor("scoring")}
	runService(t, "scoring", func(ctx context.Context) error { return scoring.Run(ctx, scoringCfg) })
	// Settings the services are gaining as this is written are read from an environment, as
	// the binaries read them: a setting a service does not know is ignored.
	links := map[string]string{"LOANFLOW_LINK_KEYS": "deploytest-link-key-0123456789abcdef", "LOANFLOW_PUBLIC_URL": "https://loanflow.test"}
	var offersCfg offers.Config
	if err := env.ParseWithOptions(&offersCfg, env.Options{Environment: links}); err != nil {
		t.Fatal(err)
	}
	offersCfg.Bus, offersCfg.Logger, offersCfg.Ops, offersCfg.NATSOptions = c.settings("offers"), log, ops("offers"), optsFor("offers")
	runService(t, "offers", func(ctx context.Context) error { return offers.Run(ctx, offersCfg) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const token = "deploytest-token"
	var cfg ingress.Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: links}); err != nil {
		t.Fatal(err)
	}
	cfg.Bus, cfg.BasePath, cfg.BearerTokens, cfg.PhoneKey = c.settings("ingress"), "/integrations", []string{token}, phoneKey
	cfg.SyncBudget, cfg.RetryAfter, cfg.MaxBodyBytes, cfg.Listener = 20*time.Second, time.Second, 65536, ln
	cfg.Logger, cfg.Ops, cfg.NATSOptions = log, ops("ingress"), optsFor("ingress")
	runService(t, "ingress", func(ctx context.Context) error { return ingress.Run(ctx, cfg) })
	consoleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(officerPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	consoleCfg := console.Config{Bus: c.settings("console"), Listener: consoleLn, Users: []string{officer + ":officer:" + string(hash)},
		PhoneKey: phoneKey, SessionKey: "deploytest-console-session-key-0123456789", SyncBudget: 250 * time.Millisecond,
		Logger: log, Ops: ops("console"), NATSOptions: optsFor("console")}
	runService(t, "console", func(ctx context.Context) error { return console.Run(ctx, consoleCfg) })

	for name, o := range ready {
		waitUntil(t, name+" ready", func() bool { return len(o.Ready.Check(context.Background())) == 0 },
			func() string {
				return strings.TrimSpace(strings.Join(errStrings(o.Ready.Check(context.Background())), "; "))
			})
	}

	const searchID = "3f1c9a62-5b7e-4d2a-9c1e-0b8f6a4d2e71"
	body := `{"search_id":"` + searchID + `","product_type":"loan","phone_number":"9001234567","amount":200000,"term":24}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/integrations/api/banking/loan_approval", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct{ Status, Decision string }
	if err := json.Unmarshal(answer, &got); err != nil || resp.StatusCode != http.StatusOK || got.Status != "done" || got.Decision != "has_approve" {
		t.Fatalf("answer %d %s, want 200 done has_approve", resp.StatusCode, answer)
	}

	// The audit recorded the application's three events and signed a checkpoint.
	_, adminJS := c.connect(t, "admin", nil)
	ctx := context.Background()
	auditStream, err := adminJS.Stream(ctx, topology.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three audit records", func() bool {
		info, err := auditStream.Info(ctx)
		return err == nil && info.State.Msgs >= 3
	}, func() string { return "fewer than 3 records" })
	checkpoints, err := adminJS.KeyValue(ctx, topology.BucketAuditCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a signed checkpoint", func() bool { _, err := checkpoints.Get(ctx, topology.CheckpointKey); return err == nil },
		func() string { return "no checkpoint" })

	underwrite(t, "http://"+consoleLn.Addr().String(), "http://"+ln.Addr().String(), token)

	// Every metric a service exports (consumer and stream figures among them) is gathered with
	// the service's own credentials, as a scrape would.
	for name, o := range ready {
		if _, err := o.Registry.Gather(); err != nil {
			t.Errorf("%s metrics: %v", name, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // violations are reported asynchronously
	for user, v := range seen {
		if all := v.all(); len(all) > 0 {
			t.Errorf("%s met permission violations: %v", user, all)
		}
	}
}

const (
	officer         = "ivanova"
	officerPassword = "deploytest officer password"
	// referredPhone is a known salary client's: asking above the default policy's 3 000 000 ₽
	// underwriting threshold, the application is referred to an officer.
	referredPhone = "9330445040"
)

// importClient loads one client profile into the clients bucket as the admin, as operators do
// (scoring import-clients).
func importClient(t *testing.T, c *cluster) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clients.csv")
	csv := "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list\n" +
		referredPhone + ",250000,20000,A,2019-03-01,true,false\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats, err := scoring.Import(ctx, scoring.Config{Bus: c.settings("admin"), PhoneKey: phoneKey, Logger: logger()}, path, nil)
	if err != nil || stats.Imported != 1 {
		t.Fatalf("import clients as admin: %+v, %v", stats, err)
	}
}

// underwrite takes one referral through the console, as its users see it: the application
// is posted to ingress (which answers pending, or done once the officer has decided), an
// officer signs in, takes the case from the queue and approves 2 000 000 ₽, ingress answers
// done with that offer, and the console shows the application's timeline, finds it by phone
// and counts it on the dashboard, all three read from AUDIT.
func underwrite(t *testing.T, consoleURL, ingressURL, token string) {
	t.Helper()
	const searchID = "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a"
	body := `{"search_id":"` + searchID + `","product_type":"loan","phone_number":"` + referredPhone + `","amount":3500000,"term":60}`
	type answer = partnerapi.DoneAnswer // a pending answer decodes into it too
	ask := func() (answer, error) {
		req, _ := http.NewRequest(http.MethodPost, ingressURL+"/integrations/api/banking/loan_approval", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a answer
		if err := json.Unmarshal(b, &a); err != nil || resp.StatusCode != http.StatusOK {
			return a, &answerError{resp.StatusCode, string(b)}
		}
		return a, nil
	}
	// Ingress waits its sync budget for a decision, longer than the officer takes here.
	first := make(chan answer, 1)
	go func() {
		a, err := ask()
		if err != nil {
			t.Errorf("referred application: %v", err)
		}
		first <- a
	}()

	o := consoletest.New(t, consoleURL)
	o.SignIn(officer, officerPassword)
	waitUntil(t, "the referral on the queue", func() bool {
		_, page := o.Do("GET", "/queue?lang=en", nil)
		return strings.Contains(page, searchID)
	}, func() string { return "not on the queue page" })
	page := "/cases/" + searchID
	if resp, _ := o.Post(page, page+"/take", nil); resp.Header.Get("Location") != page+"?msg=taken" {
		t.Fatalf("take: %d to %q, want %s?msg=taken", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	resp, _ := o.Post(page, page+"/decide", url.Values{"verdict": {"approve"}, "approval": {"full_approved"},
		"amount": {"2 000 000"}, "comment": {"Доход подтверждён"}})
	if got := resp.Header.Get("Location"); got != page+"?msg=decided" {
		t.Fatalf("decide: %d to %q, want %s?msg=decided", resp.StatusCode, got, page)
	}

	var a answer
	select {
	case a = <-first:
	case <-time.After(40 * time.Second):
		t.Fatal("ingress did not answer the referred application")
	}
	waitUntil(t, "ingress to answer done", func() bool {
		if a.Status == partnerapi.StatusDone {
			return true
		}
		a, _ = ask()
		return a.Status == partnerapi.StatusDone
	}, func() string { return "answer " + string(a.Status) })
	var largest partnerapi.Money
	for _, offer := range a.Data {
		if offer.Decision != partnerapi.OfferFullApproved {
			t.Errorf("offer %s, want the officer's %s", offer.Decision, partnerapi.OfferFullApproved)
		}
		largest = max(largest, offer.Amount.Max)
	}
	if a.Decision != partnerapi.DecisionHasApprove || largest != 2_000_000_00 {
		t.Errorf("answer %s up to %s, want has_approve up to the officer's 2 000 000", a.Decision, largest)
	}

	// The console reads all three from AUDIT, which trails LOANS by the audit's batch.
	waitUntil(t, "the timeline with the officer's decision", func() bool {
		_, page := o.Do("GET", "/applications/"+searchID+"?lang=en", nil)
		return strings.Count(page, `class="event"`) >= 5 && strings.Contains(page, officer)
	}, func() string { _, page := o.Do("GET", "/applications/"+searchID+"?lang=en", nil); return page })
	if _, page := o.Post("/search", "/search", url.Values{"q": {referredPhone}}); !strings.Contains(page, searchID) || strings.Contains(page, referredPhone) {
		t.Errorf("phone search: the application not found, or the phone shown:\n%s", page)
	}
	waitUntil(t, "the dashboard to count both applications", func() bool {
		_, page := o.Do("GET", "/dashboard?lang=en", nil)
		return strings.Contains(page, `id="dash-received">2<`) && strings.Contains(page, `id="dash-referred">1<`)
	}, func() string { _, page := o.Do("GET", "/dashboard?lang=en", nil); return page })
}

type answerError struct {
	status int
	body   string
}

func (e *answerError) Error() string { return http.StatusText(e.status) + ": " + e.body }

func errStrings(m map[string]error) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v.Error())
	}
	return out
}
