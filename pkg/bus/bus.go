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
	"slices"
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

// EnsureStreams creates the LOANS, AUDIT and DEADLETTER streams, or updates them when their declaration
// changed. A stream that already matches is left alone: services start concurrently, and
// needless updates would race each other for nothing.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o topology.Options) error {
	for _, cfg := range []jetstream.StreamConfig{topology.LoansStream(o), topology.AuditStream(o), topology.DeadLetterStream(o)} {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err = js.CreateStream(ctx, want); err == nil || !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
		s, err = js.Stream(ctx, want.Name) // created meanwhile by another service
	}
	if err != nil {
		return err
	}
	if sameStream(s.CachedInfo().Config, want) {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

// sameStream compares the settings the declarations set; the server fills in the rest.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Description == want.Description &&
		have.Retention == want.Retention && have.Discard == want.Discard && have.MaxAge == want.MaxAge &&
		have.Storage == want.Storage && have.Replicas == want.Replicas && have.Duplicates == want.Duplicates &&
		have.DenyDelete == want.DenyDelete && have.DenyPurge == want.DenyPurge && have.AllowDirect == want.AllowDirect
}

// EnsureConsumer creates the named durable consumer from its declaration, or updates it when
// the declaration changed.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, name string, r topology.Retry) error {
	stream, want, err := topology.Consumer(name, r)
	if err != nil {
		return err
	}
	// The server may deliver a few more times than the stage's own attempts: those extra
	// deliveries only retry publishing the failure event, so that it cannot be lost.
	if want.MaxDeliver > 0 {
		want.MaxDeliver += ReportAttempts
	}
	c, err := js.Consumer(ctx, stream, name)
	if err == nil {
		have := c.CachedInfo().Config
		if have.FilterSubject == want.FilterSubject && slices.Equal(have.FilterSubjects, want.FilterSubjects) && have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver &&
			have.MaxAckPending == want.MaxAckPending && have.Description == want.Description && have.AckPolicy == want.AckPolicy {
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("ensure consumer %s on %s: %w", name, stream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, stream, want); err != nil {
		return fmt.Errorf("ensure consumer %s on %s: %w", name, stream, err)
	}
	return nil
}

// EnsureBucket opens a KV bucket, creating it from its declaration or updating it when the
// declaration changed.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, want.Bucket)
	if err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("ensure bucket %s: %w", want.Bucket, err)
		}
		if st.TTL() == want.TTL && st.History() == int64(want.History) {
			if s, ok := st.(*jetstream.KeyValueBucketStatus); !ok || (s.StreamInfo().Config.Replicas == want.Replicas && s.StreamInfo().Config.Description == want.Description) {
				return kv, nil
			}
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("ensure bucket %s: %w", want.Bucket, err)
	}
	kv, err = js.CreateOrUpdateKeyValue(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", want.Bucket, err)
	}
	return kv, nil
}

// EnsureTopology declares everything at once: every stream, every durable consumer and every
// bucket. The all-in-one and provisioning (deploy/cmd/provision) run it before any service
// starts.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, s Settings) error {
	o := s.Topology()
	if err := EnsureStreams(ctx, js, o); err != nil {
		return err
	}
	for name, r := range map[string]topology.Retry{
		topology.ConsumerScoring: s.Retry(), topology.ConsumerOffers: s.Retry(),
		topology.ConsumerFailures: s.MarkerRetry(), topology.ConsumerAudit: s.AuditRetry(),
		topology.ConsumerDeadline: s.MarkerRetry(), topology.ConsumerConsole: s.Retry(),
	} {
		if err := EnsureConsumer(ctx, js, name, r); err != nil {
			return err
		}
	}
	for _, b := range []jetstream.KeyValueConfig{topology.DecisionsBucket(o), topology.ClientsBucket(o), topology.AuditCheckpointsBucket(o), topology.UnderwritingBucket(o), topology.ConsoleRevocationsBucket(o)} {
		if _, err := EnsureBucket(ctx, js, b); err != nil {
			return err
		}
	}
	return nil
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

// Conn is a service's connection: the NATS connection, its JetStream handle, and the streams
// ensured. Close drains it, last in a graceful shutdown.
type Conn struct {
	NC *nats.Conn
	// JS is the JetStream handle; with provisioning off its declaring calls fail with
	// ErrNotProvisioned without asking the server.
	JS        jetstream.JetStream
	log       *slog.Logger
	timeout   time.Duration
	topology  topology.Options
	provision bool
}

// StartupTimeout bounds how long a service keeps trying to declare what it uses at start: on a
// cluster that is still electing leaders, or with several services declaring at once, the
// first attempts can time out.
const StartupTimeout = 2 * time.Minute

// Open connects as the named service, with the settings' credentials and TLS, and ensures the
// streams every service uses. With provisioning off (LOANFLOW_PROVISION=false) it declares
// nothing and asks nothing of the stream API: EnsureConsumer and EnsureBucket then wait, as
// long as declaring would, for what the service uses to exist.
func Open(ctx context.Context, s Settings, name string, log *slog.Logger, opts ...nats.Option) (*Conn, error) {
	auth, err := s.Options()
	if err != nil {
		return nil, err
	}
	nc, js, err := Connect(s.URL, name, log, append(auth, opts...)...)
	if err != nil {
		return nil, err
	}
	c := &Conn{NC: nc, JS: js, log: log, timeout: s.ShutdownTimeout, topology: s.Topology(), provision: s.Provisions()}
	if !c.provision {
		// Nothing to ask: the stream API is denied to service users. The consumer and bucket
		// checks that follow (EnsureConsumer, EnsureBucket) prove the streams exist.
		c.JS = bindOnly{js}
		return c, nil
	}
	if err := c.retry(ctx, "streams", func(ctx context.Context) error { return EnsureStreams(ctx, js, c.topology) }); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// EnsureConsumer declares a durable consumer (or, with provisioning off, checks that it
// exists), retrying as Open does.
func (c *Conn) EnsureConsumer(ctx context.Context, name string, r topology.Retry) error {
	return c.retry(ctx, "consumer "+name, func(ctx context.Context) error {
		if !c.provision {
			return CheckConsumer(ctx, c.JS, name, r, c.log)
		}
		return EnsureConsumer(ctx, c.JS, name, r)
	})
}

// EnsureBucket declares a KV bucket (or, with provisioning off, checks that it exists) and
// opens it, retrying as Open does. Either way the bucket is used through a KV, which needs no
// stream API, so that the all-in-one runs the same code as a least-privilege service.
func (c *Conn) EnsureBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv *KV
	err := c.retry(ctx, "bucket "+cfg.Bucket, func(ctx context.Context) (err error) {
		if !c.provision {
			kv, err = CheckBucket(ctx, c.NC, c.JS, cfg)
			return err
		}
		if _, err = EnsureBucket(ctx, c.JS, cfg); err != nil {
			return err
		}
		kv, err = BindBucket(ctx, c.NC, c.JS, cfg.Bucket)
		return err
	})
	if err != nil {
		return nil, err
	}
	return kv, nil
}

// Topology is the declarations' options the connection was opened with.
func (c *Conn) Topology() topology.Options { return c.topology }

// retry calls fn until it succeeds, ctx ends or StartupTimeout passes, backing off.
func (c *Conn) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(StartupTimeout)
	wait := 250 * time.Millisecond
	var last error // the last attempt that ctx did not cut short
	for {
		err := fn(ctx)
		if err != nil && ctx.Err() != nil && last != nil {
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), last)
		}
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		last = err
		c.log.Warn("declaring "+what+" failed, retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// Close drains the connection, logging a drain that did not finish.
func (c *Conn) Close() {
	if err := Drain(c.NC, c.timeout); err != nil {
		c.log.Warn("drain", "err", err)
	}
}
