package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
)

// Handler is one durable consumer and the function that handles its events.
type Handler struct {
	// Consumer is the durable consumer's name (contracts/topology); it also names the handler.
	Consumer string
	// Stream holds the consumer.
	Stream string
	// Concurrency is how many events this process handles at once.
	Concurrency int
	Retry       topology.Retry
	// Handle processes one event; an error is retried or given up on by Failures.
	Handle   message.NoPublishHandlerFunc
	Failures Failures
	// Health, when set, records whether the consumer is consuming (for readiness).
	Health *Health
	// Metrics, when set, counts redeliveries (dead letters are counted by Failures.Metrics).
	Metrics *Metrics
}

// Run consumes every handler's consumer through a Watermill router until ctx ends, then stops
// pulling, finishes and acks the events in hand, and returns.
func Run(ctx context.Context, js jetstream.JetStream, log *slog.Logger, closeTimeout time.Duration, handlers ...Handler) error {
	// Watermill's own chatter (handler added, started, closed) is debug-level for us.
	wlog := watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: closeTimeout}, wlog)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	for _, h := range handlers {
		retry := h.Retry
		sub := NewSubscriber(js, SubscriberConfig{
			Stream:       h.Stream,
			Concurrency:  h.Concurrency,
			Retry:        h.Retry,
			CloseTimeout: closeTimeout,
			Logger:       log,
			Health:       h.Health,
			// A consumer deleted under a running service is put back from its declaration.
			Ensure: func(ctx context.Context, name string) error { return EnsureConsumer(ctx, js, name, retry) },
		})
		rh := router.AddConsumerHandler(h.Consumer, h.Consumer, sub, h.Handle)
		// Failures sees the handler's errors, panics included (Recoverer turns them into
		// errors), and decides between retry and giving up.
		// observe, outermost, traces the whole delivery, giving up included.
		rh.AddMiddleware(observe(h.Consumer, h.Metrics), h.Failures.Middleware, middleware.Recoverer)
	}
	if err := router.Run(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}
