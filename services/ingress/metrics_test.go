package ingress_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/services/ingress"
)

// TestHTTPMetrics checks that answers are counted by route pattern (never the search_id in a
// GET path) and status, and timed.
func TestHTTPMetrics(t *testing.T) {
	ops := admin.NewOps()
	e := start(t, 0, func(c *ingress.Config) { c.Ops = ops })
	e.post(t, token, `{"search_id":"metrics-unknown"}`)
	e.post(t, "", `{"search_id":"metrics-unknown"}`)
	req, _ := http.NewRequest(http.MethodGet, e.base+"/metrics-unknown", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	do(t, req)

	want := `
# HELP loanflow_http_requests_total Answers of the public endpoint by route pattern and HTTP status.
# TYPE loanflow_http_requests_total counter
loanflow_http_requests_total{code="403",route="/integrations/api/banking/loan_approval"} 1
loanflow_http_requests_total{code="404",route="/integrations/api/banking/loan_approval"} 1
loanflow_http_requests_total{code="404",route="/integrations/api/banking/loan_approval/{search_id}"} 1
`
	if err := testutil.GatherAndCompare(ops.Registry, strings.NewReader(want), "loanflow_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(ops.Registry, "loanflow_http_request_duration_seconds"); err != nil || n != 2 {
		t.Errorf("duration histograms: %d (%v), want one per route (2)", n, err)
	}
}
