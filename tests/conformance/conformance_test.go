package conformance_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/tests/conformance"
)

const loanflowToken = "conformance-token"

// startLoanflow runs the all-in-one on free ports, a temporary data directory and the demo
// clients, stopped when the test ends, and returns its API base URL.
func startLoanflow(t *testing.T, budget time.Duration) string {
	t.Helper()
	var cfg allinone.Config
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSAddr = "127.0.0.1:0"
	cfg.ClientsFile = "../../deploy/demo/clients.csv"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Ingress.BearerTokens = []string{loanflowToken}
	cfg.Ingress.PhoneKey = "conformance-phone-key-0123456789"
	cfg.Ingress.BasePath = "/integrations"
	cfg.Ingress.SyncBudget = budget
	cfg.Ingress.RetryAfter = time.Second
	cfg.Ingress.MaxBodyBytes = 65536
	// Links to Yandex must be https (contracts/openapi.yaml); production sets ingress's public
	// address the same way.
	cfg.Offers.PublicURL = "https://partner.loanflow.example"
	// A console account with a cheap hash, so that each start does not spend a second in
	// bcrypt; the password is e2e-officer-password.
	cfg.Console.Users = []string{"officer:officer:$2a$04$9BzkoD9IZvwAq74HX71DHepCq6p19hWcMKbUCMpPCI89BkZiUapJ2"}
	for _, b := range []*bus.Settings{&cfg.Ingress.Bus, &cfg.Scoring.Bus, &cfg.Offers.Bus, &cfg.Audit.Bus} {
		*b = bus.Settings{Replicas: 1, PublishTimeout: 2 * time.Second, MaxDeliver: 3, BackOff: []time.Duration{50 * time.Millisecond},
			AckWait: 10 * time.Second, Concurrency: 8, ShutdownTimeout: 5 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := allinone.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start all-in-one: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := sys.Wait(); err != nil {
			t.Errorf("all-in-one stopped with: %v", err)
		}
	})
	return "http://" + sys.HTTPAddr() + "/integrations"
}

// TestLoanflowConforms runs every scenario against loanflow's all-in-one with the demo data:
// once with a sync budget (answers done at once) and once without (pending, then polls).
func TestLoanflowConforms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		budget time.Duration
		// mustPass are scenarios that may not be skipped in this mode.
		mustPass []string
	}{
		{"sync", 2 * time.Second, []string{"several_offers", "rejection", "get_extension"}},
		{"async", 0, []string{"several_offers", "rejection", "get_extension", "async_poll"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := startLoanflow(t, tc.budget)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// A shorter deadline than Yandex's 2 minutes keeps a broken run short; the count
			// of concurrent applications stays Yandex's 50.
			rep, err := conformance.Run(ctx, conformance.Config{
				BaseURL: base, Token: loanflowToken, Deadline: 20 * time.Second, Concurrency: 50,
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("loanflow does not conform:\n%s", text.String())
			}
			for _, name := range tc.mustPass {
				if res := result(t, rep, name); res.Status != conformance.Pass {
					t.Errorf("%s: %s %q, want pass against the demo data\n%s", name, res.Status, res.Reasons, text.String())
				}
			}
			if got, want := len(rep.Results), len(conformance.Scenarios()); got != want {
				t.Errorf("%d scenarios ran, want %d", got, want)
			}
			if testing.Verbose() {
				t.Logf("\n%s", text.String())
			}
		})
	}
}
