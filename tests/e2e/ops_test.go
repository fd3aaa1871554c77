package e2e_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// TestAdminEndpoints runs the all-in-one with its admin registry and checks what an operator
// sees: every service ready, and the metrics of one decided application.
func TestAdminEndpoints(t *testing.T) {
	ops := admin.NewOps()
	s := start(t, options{budget: 2 * time.Second, ops: ops})
	adm := httptest.NewServer(admin.Handler(ops, false))
	defer adm.Close()

	if a := s.post(card("e2e-ops-1", unknown)); a.status != http.StatusOK || a.body["status"] != "done" {
		t.Fatalf("answer %d %s, want done", a.status, a.raw)
	}
	natstest.WaitFor(t, "every service ready", func() bool {
		return len(ops.Ready.Check(context.Background())) == 0
	})
	if body, ok := readyBody(t, adm.URL); !ok {
		t.Fatalf("/readyz: %s", body)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`loanflow_http_requests_total\{code="200",route="/integrations/api/banking/loan_approval"\} 1`),
		regexp.MustCompile(`loanflow_decisions_total\{decision="has_approve",product_type="credit_card"\} 1`),
		regexp.MustCompile(`loanflow_http_request_duration_seconds_count\{route="/integrations/api/banking/loan_approval"\} 1`),
	}
	metrics := get(t, adm.URL+"/metrics")
	for _, re := range want {
		if !re.MatchString(metrics) {
			t.Errorf("/metrics lacks %s", re)
		}
	}
	// The audit records the application's three events (received, scored, decided).
	chainLen := regexp.MustCompile(`loanflow_audit_chain_length (\d+)`)
	natstest.WaitFor(t, "audit chain length 3", func() bool {
		m := chainLen.FindStringSubmatch(get(t, adm.URL+"/metrics"))
		return m != nil && m[1] == "3"
	})
	// Nothing of it on the port Yandex calls.
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/"} {
		resp, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public port answers %s with %d, want 404", path, resp.StatusCode)
		}
	}
}

func readyBody(t *testing.T, base string) (string, bool) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"ready":true`)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
