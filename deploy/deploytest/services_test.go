package deploytest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/services/audit"
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

// TestServicesRunAsLeastPrivilegeUsers provisions the cluster as the admin, then runs the real
// ingress, scoring, offers and audit, each with its own credentials, TLS and
// LOANFLOW_PROVISION=false, takes one application over HTTP to a final answer and its audit
// records, and does console's operations with console's credentials: none of it may meet a
// permission violation.
func TestServicesRunAsLeastPrivilegeUsers(t *testing.T) {
	c := startCluster(t)
	c.provision(t)
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

	consoleOperations(t, c, adminJS, searchID, optsFor)

	time.Sleep(200 * time.Millisecond) // violations are reported asynchronously
	for user, v := range seen {
		if all := v.all(); len(all) > 0 {
			t.Errorf("%s met permission violations: %v", user, all)
		}
	}
}

// consoleOperations does, with console's credentials, what the console does: pull a referred
// application from its consumer, keep the case in the underwriting bucket (Create, Get,
// Update, a watcher), read the application's audit timeline, publish the decision.
func consoleOperations(t *testing.T, c *cluster, adminJS jetstream.JetStream, searchID string, optsFor func(string) []nats.Option) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := c.settings("console")
	opts, err := s.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.URL, append(opts, optsFor("console")...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A referred application, published as scoring would (the admin stands in for it).
	referred := &nats.Msg{Subject: events.TypeApplicationReferred, Data: []byte(`{"search_id":"` + searchID + `"}`), Header: nats.Header{}}
	referred.Header.Set(events.HeaderSearchID, searchID)
	if _, err := adminJS.PublishMsg(ctx, referred, jetstream.WithMsgID(searchID+":referred")); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, topology.StreamLoans, topology.ConsumerConsole)
	if err != nil {
		t.Fatalf("console binds its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("console acks: %v", err)
		}
	}
	if n != 1 {
		t.Errorf("console pulled %d messages, want 1 (%v)", n, batch.Error())
	}

	kv, err := js.KeyValue(ctx, topology.BucketUnderwriting)
	if err != nil {
		t.Fatalf("console opens underwriting: %v", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatalf("console watches underwriting: %v", err)
	}
	defer w.Stop()
	rev, err := kv.Create(ctx, searchID, []byte(`{"state":"open"}`))
	if err != nil {
		t.Fatalf("console creates a case: %v", err)
	}
	if _, err := kv.Get(ctx, searchID); err != nil {
		t.Errorf("console reads a case: %v", err)
	}
	if _, err := kv.Update(ctx, searchID, []byte(`{"state":"decided"}`), rev); err != nil {
		t.Errorf("console updates a case: %v", err)
	}
	deadline := time.After(10 * time.Second)
watch:
	for {
		select {
		case e := <-w.Updates():
			if e != nil && e.Key() == searchID {
				break watch
			}
		case <-deadline:
			t.Fatal("console's watcher saw nothing")
		}
	}

	timeline, err := js.OrderedConsumer(ctx, topology.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.AuditSubject(searchID)}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("console reads AUDIT: %v", err)
	}
	records, err := timeline.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for m := range records.Messages() {
		n++
		if !bytes.Contains(m.Data(), []byte(searchID)) {
			t.Errorf("audit record of another application: %s", m.Data())
		}
	}
	if n < 3 {
		t.Errorf("console read %d audit records, want 3 (%v)", n, records.Error())
	}

	decided := &nats.Msg{Subject: events.TypeUnderwritingDecided, Data: []byte(`{"search_id":"` + searchID + `"}`), Header: nats.Header{}}
	decided.Header.Set(events.HeaderSearchID, searchID)
	if _, err := js.PublishMsg(ctx, decided, jetstream.WithMsgID(searchID+":decided")); err != nil {
		t.Errorf("console publishes its decision: %v", err)
	}
}

func errStrings(m map[string]error) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v.Error())
	}
	return out
}
