package tracing

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
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
