package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
)

// SubscriberConfig binds a Subscriber to one stream.
type SubscriberConfig struct {
	// Stream holds the durable consumers this subscriber reads.
	Stream string
	// Concurrency is how many messages this process handles at once per subscription.
	Concurrency int
	// Retry gives the delay before a nacked message is redelivered and the time a handler
	// may take (AckWait).
	Retry topology.Retry
	// CloseTimeout bounds how long Close waits for messages in hand.
	CloseTimeout time.Duration
	Logger       *slog.Logger
	// Ensure re-creates a durable consumer that disappeared; nil leaves it to an operator.
	Ensure func(ctx context.Context, consumer string) error
	// HealthInterval is how often the consumer is checked for being deleted or stalled.
	HealthInterval time.Duration
	// Health, when set, records whether each subscription is consuming, for readiness.
	Health *Health
}

// Subscriber reads pre-created durable pull consumers: Subscribe's topic is the consumer's
// name, never a subject, so that no consumer is ever created by the adapter.
type Subscriber struct {
	js  jetstream.JetStream
	cfg SubscriberConfig

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber for cfg.Stream.
func NewSubscriber(js jetstream.JetStream, cfg SubscriberConfig) *Subscriber {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 30 * time.Second
	}
	if cfg.Retry.AckWait <= 0 {
		cfg.Retry.AckWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 5 * time.Second
	}
	if cfg.Health == nil {
		cfg.Health = &Health{}
	}
	return &Subscriber{js: js, cfg: cfg, closing: make(chan struct{})}
}

// Subscribe starts consuming the durable consumer named consumer. Messages come out one per
// worker: each worker waits for the handler's Ack or Nack before taking the next, so at most
// Concurrency messages are in hand.
func (s *Subscriber) Subscribe(ctx context.Context, consumer string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("bus: subscriber closed")
	default:
	}
	log := s.cfg.Logger.With("consumer", consumer)
	s.cfg.Health.track(s.cfg.Stream, consumer)
	out := make(chan *message.Message)
	work := make(chan jetstream.Msg)
	stop := make(chan struct{})
	dispatch := func(m jetstream.Msg) {
		select {
		case work <- m:
		case <-stop:
			// Never handed to a handler: let another replica have it now.
			_ = m.Nak()
		}
	}
	supervised := make(chan struct{})
	go func() {
		defer close(supervised)
		s.supervise(consumer, dispatch, stop, log)
	}()

	var workers sync.WaitGroup
	for range s.cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case m := <-work:
					s.handle(m, out, stop, log)
				case <-stop:
					return
				}
			}
		}()
	}

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		// Stop pulling, then let the workers finish the messages in hand.
		close(stop)
		<-supervised
		workers.Wait()
		close(out)
	}()
	return out, nil
}

// supervise keeps one Consume running on the durable consumer until stop: it binds (re-creating
// the consumer when it was deleted), and restarts consuming when the consumer stalls (missed
// heartbeats) or disappears, which nats.go reports but does not recover from on its own.
func (s *Subscriber) supervise(consumer string, dispatch jetstream.MessageHandler, stop <-chan struct{}, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	wait := func(d time.Duration) bool {
		select {
		case <-stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		cons, err := s.js.Consumer(ctx, s.cfg.Stream, consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) && s.cfg.Ensure != nil {
			log.Warn("consumer missing, re-creating it")
			err = s.cfg.Ensure(ctx, consumer)
			if err == nil {
				continue
			}
		}
		if err != nil {
			s.cfg.Health.set(consumer, fmt.Errorf("bind %s: %w", consumer, err))
			if ctx.Err() != nil || !wait(time.Second) {
				return
			}
			continue
		}
		stalled := make(chan error, 1)
		flag := func(err error) {
			select {
			case stalled <- err:
			default:
			}
		}
		cc, err := cons.Consume(dispatch,
			jetstream.PullMaxMessages(s.cfg.Concurrency),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				log.Warn("consume", "err", err)
				if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
					errors.Is(err, jetstream.ErrConsumerNotFound) {
					flag(err)
				}
			}))
		if err != nil {
			s.cfg.Health.set(consumer, fmt.Errorf("consume %s: %w", consumer, err))
			if !wait(time.Second) {
				return
			}
			continue
		}
		s.cfg.Health.set(consumer, nil)
		restart := s.watch(ctx, cons, stop, stalled, flag)
		cc.Stop()
		if !restart {
			return
		}
		err = <-stalled
		s.cfg.Health.set(consumer, fmt.Errorf("consumer %s stalled: %w", consumer, err))
		log.Warn("consumer stalled, consuming again", "err", err)
	}
}

// watch checks the consumer every HealthInterval until stop (false) or a stall (true).
func (s *Subscriber) watch(ctx context.Context, cons jetstream.Consumer, stop <-chan struct{}, stalled chan error, flag func(error)) bool {
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return false
		case err := <-stalled:
			stalled <- err
			return true
		case <-t.C:
			if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
				flag(err)
			}
		}
	}
}

// handle hands one message to the router and settles it with JetStream by the outcome.
func (s *Subscriber) handle(m jetstream.Msg, out chan<- *message.Message, stop <-chan struct{}, log *slog.Logger) {
	msg, delivered := toMessage(m)
	// A message in hand is finished on shutdown rather than abandoned, within AckWait.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Retry.AckWait)
	defer cancel()
	msg.SetContext(ctx)

	select {
	case out <- msg:
	case <-stop:
		_ = m.Nak()
		return
	}
	var hardStop <-chan time.Time
	for {
		select {
		case <-msg.Acked():
			var err error
			if d, perr := strconv.ParseInt(msg.Metadata.Get(metaDefer), 10, 64); perr == nil {
				err = m.NakWithDelay(time.Duration(d))
			} else if msg.Metadata.Get(metaTerminate) != "" {
				err = m.Term()
			} else {
				err = m.Ack()
			}
			if err != nil {
				log.Warn("ack", "msg_id", msg.UUID, "err", err)
			}
			return
		case <-msg.Nacked():
			if err := m.NakWithDelay(s.cfg.Retry.Delay(delivered)); err != nil {
				log.Warn("nak", "msg_id", msg.UUID, "err", err)
			}
			return
		case <-stop:
			// Shutting down: give the handler until CloseTimeout, then leave the message to
			// be redelivered after AckWait.
			stop = nil
			hardStop = time.After(s.cfg.CloseTimeout)
		case <-hardStop:
			log.Warn("handler did not finish before shutdown; message left for redelivery", "msg_id", msg.UUID)
			return
		}
	}
}

func toMessage(m jetstream.Msg) (*message.Message, uint64) {
	h := m.Headers()
	var delivered, seq uint64
	if md, err := m.Metadata(); err == nil {
		delivered, seq = md.NumDelivered, md.Sequence.Stream
	}
	id := h.Get(events.HeaderMsgID)
	if id == "" {
		id = m.Subject() + "@" + strconv.FormatUint(seq, 10)
	}
	msg := message.NewMessage(id, m.Data())
	for k, v := range h {
		if len(v) > 0 {
			msg.Metadata.Set(k, v[0])
		}
	}
	msg.Metadata.Set(MetaSubject, m.Subject())
	msg.Metadata.Set(MetaDelivered, strconv.FormatUint(delivered, 10))
	msg.Metadata.Set(MetaStreamSeq, strconv.FormatUint(seq, 10))
	return msg, delivered
}

// Close stops every subscription and waits until the messages in hand are settled.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}
