package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/tracing"
)

// TestOneTraceThroughEveryService records the spans of one application and checks that the
// HTTP request, scoring, offers and the audit records of its events are one trace, continuing
// the traceparent Yandex sent.
func TestOneTraceThroughEveryService(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	shutdown := tracing.Install(rec, "loanflow-e2e")
	defer shutdown(context.Background())

	s := start(t, options{budget: 2 * time.Second})
	const yandexTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, s.base+"/integrations/api/banking/loan_approval", strings.NewReader(card("e2e-trace-1", unknown)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("traceparent", "00-"+yandexTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	want := []string{"POST loan_approval", "scoring loan.application.received.v1", "offers loan.application.scored.v1", "audit record"}
	var spans []sdktrace.ReadOnlySpan
	natstest.WaitFor(t, "spans of every service, and three audit records", func() bool {
		spans = rec.Ended()
		names := map[string]int{}
		for _, sp := range spans {
			if sp.SpanContext().TraceID().String() == yandexTrace {
				names[sp.Name()]++
			}
		}
		for _, n := range want {
			if names[n] == 0 {
				return false
			}
		}
		return names["audit record"] >= 3
	})
	for _, sp := range spans {
		if sp.Name() == "POST loan_approval" && sp.SpanContext().TraceID().String() != yandexTrace {
			t.Errorf("the request's span is in trace %s, not Yandex's %s", sp.SpanContext().TraceID(), yandexTrace)
		}
	}
}
