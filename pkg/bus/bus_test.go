package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func fastRetry() topology.Retry {
	return topology.Retry{MaxDeliver: 3, BackOff: []time.Duration{10 * time.Millisecond}, AckWait: 5 * time.Second, MaxAckPending: 100}
}

// setup starts NATS and declares the streams and the scoring and failure consumers.
func setup(t *testing.T, r topology.Retry) jetstream.JetStream {
	t.Helper()
	srv := natstest.Start(t)
	nc, js, err := bus.Connect(srv.ClientURL(), "test", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, js, topology.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{topology.ConsumerScoring, topology.ConsumerFailures} {
		if err := bus.EnsureConsumer(ctx, js, c, r); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

func publishReceived(t *testing.T, pub *bus.Publisher, searchID string) {
	t.Helper()
	msg, err := bus.NewEvent(events.TypeApplicationReceived, searchID, bus.Trace{CorrelationID: "corr-" + searchID}, events.ApplicationReceived{SearchID: searchID})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(events.TypeApplicationReceived, msg); err != nil {
		t.Fatal(err)
	}
}

// run runs handle on the scoring consumer until the returned stop is called.
func run(t *testing.T, js jetstream.JetStream, r topology.Retry, handle message.NoPublishHandlerFunc) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.Run(ctx, js, quiet, 5*time.Second, bus.Handler{
			Consumer: topology.ConsumerScoring, Stream: topology.StreamLoans, Concurrency: 4, Retry: r,
			Handle:   handle,
			Failures: bus.Failures{Stage: "scoring", Retry: r, Publisher: bus.NewPublisher(js, time.Second), Logger: quiet},
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// failures reads every loan.application.failed.v1 in the stream.
func failures(t *testing.T, js jetstream.JetStream) []events.ApplicationFailed {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, topology.StreamLoans)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.ApplicationFailed
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if raw.Subject != events.TypeApplicationFailed {
			continue
		}
		var f events.ApplicationFailed
		if err := json.Unmarshal(raw.Data, &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func pendingOf(t *testing.T, js jetstream.JetStream) (ackPending int, numPending uint64) {
	t.Helper()
	c, err := js.Consumer(context.Background(), topology.StreamLoans, topology.ConsumerScoring)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending, info.NumPending
}

func TestEveryEventHandledAndAcked(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	pub := bus.NewPublisher(js, time.Second)
	var mu sync.Mutex
	seen := map[string]string{}
	run(t, js, r, func(msg *message.Message) error {
		var ev events.ApplicationReceived
		if err := bus.Decode(msg, &ev); err != nil {
			return err
		}
		mu.Lock()
		seen[ev.SearchID] = msg.Metadata.Get(events.HeaderCorrelationID)
		mu.Unlock()
		return nil
	})
	const n = 50
	for i := range n {
		publishReceived(t, pub, "s"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	natstest.WaitFor(t, "all events", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
	natstest.WaitFor(t, "all acks", func() bool { a, p := pendingOf(t, js); return a == 0 && p == 0 })
	for id, corr := range seen {
		if corr != "corr-"+id {
			t.Errorf("%s: correlation id %q, want %q", id, corr, "corr-"+id)
		}
	}
	if got := failures(t, js); len(got) != 0 {
		t.Errorf("failures = %v, want none", got)
	}
}

func TestPublishDeduplicatesBySearchIDAndType(t *testing.T) {
	js := setup(t, fastRetry())
	pub := bus.NewPublisher(js, time.Second)
	publishReceived(t, pub, "dup")
	publishReceived(t, pub, "dup")
	s, _ := js.Stream(context.Background(), topology.StreamLoans)
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Msgs; got != 1 {
		t.Errorf("messages in stream = %d, want 1", got)
	}
}

func TestTransientErrorRetriesThenFailsOnce(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	var calls atomic.Int32
	run(t, js, r, func(*message.Message) error {
		calls.Add(1)
		return errors.New("downstream unavailable")
	})
	publishReceived(t, bus.NewPublisher(js, time.Second), "flaky")
	natstest.WaitFor(t, "failure event", func() bool { return len(failures(t, js)) == 1 })
	natstest.WaitFor(t, "message settled", func() bool { a, p := pendingOf(t, js); return a == 0 && p == 0 })
	time.Sleep(100 * time.Millisecond) // room for a wrong extra redelivery to show
	if got, want := int(calls.Load()), r.MaxDeliver; got != want {
		t.Errorf("handler calls = %d, want %d (MaxDeliver)", got, want)
	}
	f := failures(t, js)[0]
	if f.SearchID != "flaky" || f.Stage != "scoring" || f.Reason != events.ReasonRetriesExhausted || f.Deliveries != r.MaxDeliver {
		t.Errorf("failure = %+v", f)
	}
}

func TestPoisonEventFailsAtOnceAndNeverLoops(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	var calls atomic.Int32
	run(t, js, r, func(msg *message.Message) error {
		calls.Add(1)
		var ev events.ApplicationReceived
		return bus.Decode(msg, &ev)
	})
	// A payload that no handler can decode, on the right subject, with a search_id header.
	msg := message.NewMessage("poison-1", []byte("{not json"))
	msg.Metadata.Set(events.HeaderSearchID, "poison-1")
	msg.Metadata.Set(events.HeaderEventType, events.TypeApplicationReceived)
	if err := bus.NewPublisher(js, time.Second).Publish(events.TypeApplicationReceived, msg); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, "failure event", func() bool { return len(failures(t, js)) == 1 })
	natstest.WaitFor(t, "message settled", func() bool { a, p := pendingOf(t, js); return a == 0 && p == 0 })
	time.Sleep(100 * time.Millisecond)
	if got := calls.Load(); got != 1 {
		t.Errorf("handler calls = %d, want 1", got)
	}
	if f := failures(t, js)[0]; f.Reason != events.ReasonPoison || f.SearchID != "poison-1" {
		t.Errorf("failure = %+v", f)
	}
	// The event itself is kept on the dead-letter stream, with why.
	dl, err := js.Stream(context.Background(), topology.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if string(m.Data) != "{not json" || m.Subject != topology.DeadLetterPrefix+"scoring" ||
		m.Header.Get(bus.HeaderDeadReason) != events.ReasonPoison || m.Header.Get(bus.HeaderDeadSubject) != events.TypeApplicationReceived {
		t.Errorf("dead letter %s %q %v", m.Subject, m.Data, m.Header)
	}
}

func TestPanicIsRetriedLikeAnError(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	var calls atomic.Int32
	run(t, js, r, func(*message.Message) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	})
	publishReceived(t, bus.NewPublisher(js, time.Second), "panics-once")
	natstest.WaitFor(t, "second delivery", func() bool { return calls.Load() == 2 })
	natstest.WaitFor(t, "message settled", func() bool { a, p := pendingOf(t, js); return a == 0 && p == 0 })
	if got := failures(t, js); len(got) != 0 {
		t.Errorf("failures = %v, want none", got)
	}
}

func TestShutdownFinishesTheEventInHand(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	started := make(chan struct{})
	var finished atomic.Bool
	stop := run(t, js, r, func(*message.Message) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return nil
	})
	publishReceived(t, bus.NewPublisher(js, time.Second), "in-hand")
	<-started
	stop()
	if !finished.Load() {
		t.Fatal("Run returned before the handler finished")
	}
	if a, p := pendingOf(t, js); a != 0 || p != 0 {
		t.Errorf("after shutdown: ack pending %d, pending %d; want the event acked", a, p)
	}
}

func TestDeletedConsumerIsRecreatedAndConsumingResumes(t *testing.T) {
	r := fastRetry()
	js := setup(t, r)
	var calls atomic.Int32
	health := &bus.Health{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.Run(ctx, js, quiet, 5*time.Second, bus.Handler{
			Consumer: topology.ConsumerScoring, Stream: topology.StreamLoans, Concurrency: 2, Retry: r,
			Handle:   func(*message.Message) error { calls.Add(1); return nil },
			Failures: bus.Failures{Stage: "scoring", Retry: r, Logger: quiet},
			Health:   health,
		})
	}()
	defer func() { cancel(); <-done }()
	pub := bus.NewPublisher(js, time.Second)
	publishReceived(t, pub, "before")
	natstest.WaitFor(t, "first event", func() bool { return calls.Load() == 1 })

	if err := js.DeleteConsumer(context.Background(), topology.StreamLoans, topology.ConsumerScoring); err != nil {
		t.Fatal(err)
	}
	// Recreated with DeliverAll, the consumer hands over the stream again: handlers are
	// idempotent, so the first event may come twice; the new one must come.
	publishReceived(t, pub, "after")
	natstest.WaitFor(t, "consuming after the consumer was deleted", func() bool { return calls.Load() >= 2 })
	if _, err := js.Consumer(context.Background(), topology.StreamLoans, topology.ConsumerScoring); err != nil {
		t.Errorf("consumer not re-created: %v", err)
	}
	natstest.WaitFor(t, "healthy again", func() bool { return health.Err() == nil })
}
