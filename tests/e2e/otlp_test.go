package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/tracing"
	"github.com/loanflow/loanflow/pkg/tracing/otlptest"
)

// TestOneTraceExportedOverOTLP sets tracing up as a process does, with
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at a collector, and checks what reaches it over the
// wire for one application: the HTTP request's span, and the scoring, offers and audit spans in
// the request's trace.
func TestOneTraceExportedOverOTLP(t *testing.T) {
	collector := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	// Export every 50 ms rather than 5 s, so that the spans arrive while the test waits.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	shutdown, err := tracing.Setup(context.Background(), "loanflow")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("trace export at shutdown: %v", err)
		}
	}()

	s := start(t, options{budget: 2 * time.Second})
	// No traceparent: ingress starts the trace.
	if a := s.post(card("e2e-otlp-1", unknown)); a.status != http.StatusOK || a.body["status"] != "done" {
		t.Fatalf("answer %d %s, want done", a.status, a.raw)
	}

	var request []byte
	natstest.WaitFor(t, "the request's, scoring's, offers' spans and three audit records in its trace", func() bool {
		spans := collector.Spans()
		request = nil
		for _, sp := range spans {
			if sp.GetName() == "POST loan_approval" {
				request = sp.GetTraceId()
			}
		}
		if request == nil {
			return false
		}
		names := map[string]int{}
		for _, sp := range spans {
			if bytes.Equal(sp.GetTraceId(), request) {
				names[sp.GetName()]++
			}
		}
		return names["scoring loan.application.received.v1"] == 1 && names["offers loan.application.scored.v1"] == 1 && names["audit record"] >= 3
	})
	if err := collector.Err(); err != nil {
		t.Errorf("undecodable exports: %v", err)
	}
	for _, r := range collector.Requests() {
		if r.Method != http.MethodPost || r.Path != "/v1/traces" || r.ContentType != "application/x-protobuf" {
			t.Errorf("export %s %s of %s, want POST /v1/traces of application/x-protobuf", r.Method, r.Path, r.ContentType)
		}
	}
	for _, sp := range collector.Spans() {
		if sp.Service != "loanflow" {
			t.Errorf("span %q of service.name %q, want loanflow", sp.GetName(), sp.Service)
		}
	}
}
