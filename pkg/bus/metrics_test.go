package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// series returns the value of the series name{labels} gathered from reg, and whether it exists.
func series(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

// TestMetricsCountRedeliveriesDeadLettersAndLag fails three events on the scoring consumer
// until MaxDeliver and reads what an operator would scrape at each step: the lag before
// anything consumes, the deliveries in hand, the redeliveries, the dead letters and the lag
// back at zero.
func TestMetricsCountRedeliveriesDeadLettersAndLag(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	reg := prometheus.NewPedanticRegistry()
	m, err := bus.NewMetrics(reg, js, topology.StreamLoans, topology.ConsumerScoring)
	if err != nil {
		t.Fatal(err)
	}
	scoring := map[string]string{"consumer": topology.ConsumerScoring}
	gauge := func(name string) float64 {
		t.Helper()
		v, ok := series(t, reg, name, scoring)
		if !ok {
			t.Fatalf("no series %s%v", name, scoring)
		}
		return v
	}

	pub := bus.NewPublisher(js, time.Second)
	const n = 3
	for _, id := range []string{"lag-1", "lag-2", "lag-3"} {
		publishReceived(t, pub, id)
	}
	// Nothing consumes yet: all three are lag, none in hand.
	if got := gauge("loanflow_consumer_pending"); got != n {
		t.Errorf("pending before consuming = %v, want %d", got, n)
	}
	if got := gauge("loanflow_consumer_ack_pending"); got != 0 {
		t.Errorf("ack pending before consuming = %v, want 0", got)
	}

	// The handler fails every delivery; the last one (MaxDeliver) waits for release, so that
	// the gauges can be read while every event is in hand.
	release := make(chan struct{})
	var mu sync.Mutex
	last := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.Run(ctx, js, quiet, 5*time.Second, bus.Handler{
			Consumer: topology.ConsumerScoring, Stream: topology.StreamLoans, Concurrency: 4, Retry: r,
			Handle: func(msg *message.Message) error {
				if int(bus.Delivered(msg)) == r.MaxDeliver {
					mu.Lock()
					last[msg.Metadata.Get(events.HeaderSearchID)] = true
					mu.Unlock()
					<-release
				}
				return errors.New("downstream unavailable")
			},
			Failures: bus.Failures{Stage: "scoring", Retry: r, Publisher: pub, Logger: quiet, Metrics: m},
			Metrics:  m,
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	natstest.WaitFor(t, "every event at its last delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(last) == n })
	if got := gauge("loanflow_consumer_ack_pending"); got != n {
		t.Errorf("ack pending while the events are in hand = %v, want %d", got, n)
	}
	if got := gauge("loanflow_consumer_pending"); got != 0 {
		t.Errorf("pending while the events are in hand = %v, want 0", got)
	}
	// Deliveries 2..MaxDeliver of each event are redeliveries; none is dead yet.
	if got, want := gauge("loanflow_consumer_redeliveries_total"), float64(n*(r.MaxDeliver-1)); got != want {
		t.Errorf("redeliveries = %v, want %v", got, want)
	}
	if v, ok := series(t, reg, "loanflow_dead_letters_total", map[string]string{"stage": "scoring", "reason": events.ReasonRetriesExhausted}); ok {
		t.Errorf("dead letters before the last delivery failed = %v, want none", v)
	}

	close(release)
	natstest.WaitFor(t, "three failure events", func() bool { return len(failures(t, js)) == n })
	natstest.WaitFor(t, "the consumer's lag back to zero", func() bool {
		return gauge("loanflow_consumer_ack_pending") == 0 && gauge("loanflow_consumer_pending") == 0
	})
	dead, ok := series(t, reg, "loanflow_dead_letters_total", map[string]string{"stage": "scoring", "reason": events.ReasonRetriesExhausted})
	if !ok || dead != n {
		t.Errorf("dead letters = %v (present %v), want %d", dead, ok, n)
	}
	// The exposition an operator scrapes: a terminated event is not redelivered again.
	want := `
# HELP loanflow_consumer_redeliveries_total Events delivered again to a consumer (a nak, an ack timeout, a restart).
# TYPE loanflow_consumer_redeliveries_total counter
loanflow_consumer_redeliveries_total{consumer="scoring"} 6
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "loanflow_consumer_redeliveries_total"); err != nil {
		t.Error(err)
	}
}

// TestMetricsAreSharedAndRedeliveryCountsOnlyRepeats checks the counters two services of one
// process (the all-in-one) register on one registry are one, and that Redelivery, which
// consumers read without Run call, counts repeats only.
func TestMetricsAreSharedAndRedeliveryCountsOnlyRepeats(t *testing.T) {
	js := setup(t, fastRetry())
	reg := prometheus.NewRegistry()
	a, err := bus.NewMetrics(reg, js, topology.StreamLoans, topology.ConsumerScoring)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.NewMetrics(reg, js, topology.StreamLoans, topology.ConsumerFailures)
	if err != nil {
		t.Fatalf("a second service's metrics on the same registry: %v", err)
	}
	for _, tc := range []struct {
		m         *bus.Metrics
		delivered uint64
	}{{a, 1}, {a, 2}, {b, 3}, {b, 0}, {nil, 5}} {
		tc.m.Redelivery("audit", tc.delivered)
	}
	if got, _ := series(t, reg, "loanflow_consumer_redeliveries_total", map[string]string{"consumer": "audit"}); got != 2 {
		t.Errorf("redeliveries = %v, want 2 (deliveries 2 and 3, on either service's Metrics)", got)
	}
	for _, c := range []string{topology.ConsumerScoring, topology.ConsumerFailures} {
		if _, ok := series(t, reg, "loanflow_consumer_pending", map[string]string{"consumer": c}); !ok {
			t.Errorf("no lag reported for %s", c)
		}
	}
}
