package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the consumers of one process see: redeliveries and dead letters, and,
// on each scrape, every consumer's lag.
type Metrics struct {
	redelivered *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

// NewMetrics registers the consumer metrics on reg; consumers (of stream) are the durable
// consumers whose lag (messages not yet delivered, and delivered but not acked) is reported.
func NewMetrics(reg prometheus.Registerer, js jetstream.JetStream, stream string, consumers ...string) (*Metrics, error) {
	m := &Metrics{
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loanflow_consumer_redeliveries_total",
			Help: "Events delivered again to a consumer (a nak, an ack timeout, a restart).",
		}, []string{"consumer"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loanflow_dead_letters_total",
			Help: "Events a stage gave up on and moved to the DEADLETTER stream, by stage and reason.",
		}, []string{"stage", "reason"}),
	}
	// Services sharing a registry (the all-in-one) share the counters.
	var err error
	if m.redelivered, err = registerShared(reg, m.redelivered); err != nil {
		return nil, err
	}
	if m.deadLetters, err = registerShared(reg, m.deadLetters); err != nil {
		return nil, err
	}
	if len(consumers) > 0 {
		if err := reg.Register(&lagCollector{js: js, stream: stream, consumers: consumers}); err != nil {
			return nil, fmt.Errorf("bus metrics: %w", err)
		}
	}
	return m, nil
}

// registerShared registers c, or returns the equal collector registered before.
func registerShared(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bus metrics: %w", err)
	}
	return c, nil
}

// Redelivery counts, for consumer, a delivery when it is not the first (delivered is the
// server's NumDelivered). Consumers read without bus.Run (the audit writer) call it for each
// message they fetch, so that their redeliveries are counted like every stage's.
func (m *Metrics) Redelivery(consumer string, delivered uint64) {
	if m != nil && delivered > 1 {
		m.redelivered.WithLabelValues(consumer).Inc()
	}
}

func (m *Metrics) deadLettered(stage, reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(stage, reason).Inc()
	}
}

// defaultLagTimeout bounds each consumer's info request during a scrape.
const defaultLagTimeout = 2 * time.Second

// lagCollector asks JetStream for each consumer's state when scraped.
type lagCollector struct {
	js        jetstream.JetStream
	stream    string
	consumers []string
}

var (
	lagPendingDesc = prometheus.NewDesc("loanflow_consumer_pending",
		"Messages in the stream the consumer has not been delivered yet (its lag).", []string{"consumer"}, nil)
	lagAckDesc = prometheus.NewDesc("loanflow_consumer_ack_pending",
		"Messages delivered to the consumer and not acknowledged yet.", []string{"consumer"}, nil)
)

// Describe sends nothing: the collector is unchecked, so that each service of a process can
// register one for its own consumers.
func (c *lagCollector) Describe(chan<- *prometheus.Desc) {}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.consumers {
		ctx, cancel := context.WithTimeout(context.Background(), defaultLagTimeout)
		cons, err := c.js.Consumer(ctx, c.stream, name)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(ctx)
		}
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(lagPendingDesc, fmt.Errorf("consumer %s: %w", name, err))
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagPendingDesc, prometheus.GaugeValue, float64(info.NumPending), name)
		ch <- prometheus.MustNewConstMetric(lagAckDesc, prometheus.GaugeValue, float64(info.NumAckPending), name)
	}
}
