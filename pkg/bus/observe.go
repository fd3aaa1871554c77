package bus

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/pkg/tracing"
)

// observe is the middleware that puts each delivery in a consumer span continuing the trace
// its headers carry, and counts redeliveries.
func observe(consumer string, m *Metrics) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			delivered := Delivered(msg)
			m.Redelivery(consumer, delivered)
			eventType := msg.Metadata.Get(events.HeaderEventType)
			ctx, span := tracing.Tracer().Start(tracing.Extract(msg.Context(), msg.Metadata), consumer+" "+eventType,
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.consumer.group.name", consumer),
					attribute.String("loanflow.event_type", eventType),
					attribute.String("loanflow.search_id", msg.Metadata.Get(events.HeaderSearchID)),
					attribute.String("loanflow.delivery", strconv.FormatUint(delivered, 10)),
				))
			defer span.End()
			msg.SetContext(ctx)
			out, err := h(msg)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "handler failed")
			}
			return out, err
		}
	}
}
