// Package bus is loanflow's messaging layer: Watermill's Publisher and Subscriber implemented
// over nats.go's jetstream package, bound to the durable consumers declared in
// contracts/topology, plus the middleware that turns a failing event into
// loan.application.failed.v1 instead of a redelivery loop.
//
// It exists because the watermill-nats adapter cannot meet the project's messaging rules: its
// JetStream publisher sends to a subject named after the stream (dotted topics fail), its
// consumers are ephemeral or short-lived and created by the adapter, it picks Nats-Msg-Id from
// random UUIDs, and a message that fails to unmarshal is neither acked nor terminated, so it
// loops forever. Here streams and durable consumers come from contracts/topology, the
// deduplication id comes from search_id and the event type, and every message ends acked,
// nacked with back-off, or terminated.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
)

// Connect opens a NATS connection named for the service that reconnects on its own for as long
// as the process lives, and a JetStream handle on it.
func Connect(url, name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	base := []nats.Option{
		nats.Name("loanflow-" + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subject := ""
			if s != nil {
				subject = s.Subject
			}
			log.Warn("nats async error", "subject", subject, "err", err)
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// EnsureStreams creates or updates the LOANS and AUDIT streams from their declarations.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o topology.Options) error {
	for _, cfg := range []jetstream.StreamConfig{topology.LoansStream(o), topology.AuditStream(o)} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// EnsureConsumer creates or updates the named durable consumer from its declaration.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, name string, r topology.Retry) error {
	stream, cfg, err := topology.Consumer(name, r)
	if err != nil {
		return err
	}
	// The server may deliver a few more times than the stage's own attempts: those extra
	// deliveries only retry publishing the failure event, so that it cannot be lost.
	if cfg.MaxDeliver > 0 {
		cfg.MaxDeliver += ReportAttempts
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, stream, cfg); err != nil {
		return fmt.Errorf("ensure consumer %s on %s: %w", name, stream, err)
	}
	return nil
}

// EnsureBucket creates or updates a KV bucket from its declaration.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Drain drains the connection (pending publishes and subscriptions flushed) and waits for it
// to close, up to timeout.
func Drain(nc *nats.Conn, timeout time.Duration) error {
	if nc == nil || nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return fmt.Errorf("drain nats connection: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		nc.Close()
		return errors.New("drain nats connection: timed out")
	}
}
