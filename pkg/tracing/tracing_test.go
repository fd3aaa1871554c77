package tracing

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/loanflow/loanflow/pkg/tracing/otlptest"
)

// TestContextCrossesHeaders starts a span, carries it in message headers to a "consumer"
// and checks that the consumer's span joins the same trace as its child.
func TestContextCrossesHeaders(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	shutdown := Install(rec, "test")
	defer shutdown(context.Background())

	ctx, producer := Tracer().Start(context.Background(), "publish")
	headers := map[string]string{}
	Inject(ctx, headers)
	producer.End()
	if !strings.HasPrefix(headers["traceparent"], "00-"+producer.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent header = %q, want the producer's trace", headers["traceparent"])
	}

	_, consumer := Tracer().Start(Extract(context.Background(), headers), "consume", trace.WithSpanKind(trace.SpanKindConsumer))
	consumer.End()

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	if got, want := spans[1].SpanContext().TraceID(), spans[0].SpanContext().TraceID(); got != want {
		t.Errorf("consumer trace %s, want the producer's %s", got, want)
	}
	if got, want := spans[1].Parent().SpanID(), spans[0].SpanContext().SpanID(); got != want {
		t.Errorf("consumer parent %s, want the producer span %s", got, want)
	}
}

func TestSetupIsOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := Setup(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Without an exporter the incoming trace context still passes through.
	in := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	out := map[string]string{}
	Inject(Extract(context.Background(), in), out)
	if out["traceparent"] != in["traceparent"] {
		t.Errorf("traceparent passed through as %q, want %q", out["traceparent"], in["traceparent"])
	}
}

// TestSetupExportsOverOTLPHTTP points the OTLP variables Setup reads at a receiver, creates
// a parent and a child span and checks that shutdown flushes them there: one protobuf POST to
// the traces path with both spans, their trace, their parent link and the service's name.
func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, endpointVar, path, wantPath string
	}{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "/v1/traces"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/collector/traces", "/collector/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := otlptest.Start(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			t.Setenv(tc.endpointVar, rc.URL+tc.path)
			if !Configured() {
				t.Fatalf("Configured() = false with %s set", tc.endpointVar)
			}
			shutdown, err := Setup(context.Background(), "loanflow-test")
			if err != nil {
				t.Fatal(err)
			}
			ctx, parent := Tracer().Start(context.Background(), "POST loan_approval", trace.WithSpanKind(trace.SpanKindServer))
			_, child := Tracer().Start(ctx, "scoring loan.application.received.v1", trace.WithSpanKind(trace.SpanKindConsumer))
			child.End()
			parent.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown (the flush): %v", err)
			}

			if err := rc.Err(); err != nil {
				t.Fatalf("undecodable export: %v", err)
			}
			reqs := rc.Requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != tc.wantPath || reqs[0].ContentType != "application/x-protobuf" {
				t.Fatalf("requests %+v, want one POST %s of application/x-protobuf", reqs, tc.wantPath)
			}
			traceID := parent.SpanContext().TraceID()
			got := map[string]otlptest.Span{}
			for _, sp := range rc.Spans() {
				if sp.Service != "loanflow-test" {
					t.Errorf("span %q of service.name %q, want loanflow-test", sp.GetName(), sp.Service)
				}
				got[sp.GetName()] = sp
			}
			p, c := got["POST loan_approval"], got["scoring loan.application.received.v1"]
			if p.Span == nil || c.Span == nil || len(got) != 2 {
				t.Fatalf("exported spans %v, want the parent and the child", slices.Collect(maps.Keys(got)))
			}
			for _, sp := range []otlptest.Span{p, c} {
				if !bytes.Equal(sp.GetTraceId(), traceID[:]) {
					t.Errorf("span %q in trace %x, want %s", sp.GetName(), sp.GetTraceId(), traceID)
				}
			}
			parentID := parent.SpanContext().SpanID()
			if !bytes.Equal(p.GetSpanId(), parentID[:]) || !bytes.Equal(c.GetParentSpanId(), parentID[:]) {
				t.Errorf("child's parent %x, parent's id %x, want both %s", c.GetParentSpanId(), p.GetSpanId(), parentID)
			}
			if p.GetKind() != tracepb.Span_SPAN_KIND_SERVER || c.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER {
				t.Errorf("kinds %v and %v, want server and consumer", p.GetKind(), c.GetKind())
			}
		})
	}
}
