package bus

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/pkg/tracing"
)

// Publisher publishes Watermill messages to JetStream and waits for each ack. The topic is the
// subject; metadata become headers; the Nats-Msg-Id header (or the message UUID) deduplicates.
type Publisher struct {
	js      jetstream.JetStream
	timeout time.Duration
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher that gives each publish up to timeout for its ack.
func NewPublisher(js jetstream.JetStream, timeout time.Duration) *Publisher {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Publisher{js: js, timeout: timeout}
}

// Publish sends the messages in order, stopping at the first that is not acknowledged.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := p.publish(m.Context(), topic, m); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publish(ctx context.Context, topic string, m *message.Message) error {
	// The span in hand (an HTTP request's, a consumer's) becomes the event's parent; without
	// one the trace headers the event already has pass on unchanged.
	tracing.Inject(ctx, m.Metadata)
	nm := &nats.Msg{Subject: topic, Data: m.Payload, Header: make(nats.Header, len(m.Metadata))}
	for k, v := range m.Metadata {
		if !strings.HasPrefix(k, "nats.") {
			nm.Header.Set(k, v)
		}
	}
	id := m.Metadata.Get(events.HeaderMsgID)
	if id == "" {
		id = m.UUID
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, nm, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish %s (%s): %w", topic, id, err)
	}
	return nil
}

// Close does nothing: the connection belongs to the service, which drains it last.
func (p *Publisher) Close() error { return nil }
