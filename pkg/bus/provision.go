package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
)

// ErrNotProvisioned is returned, with LOANFLOW_PROVISION=false, for a stream, consumer or
// bucket that does not exist, and for any attempt to declare one: provisioning is the
// administrator's (deploy/cmd/provision).
var ErrNotProvisioned = errors.New("not provisioned, and LOANFLOW_PROVISION=false: run provisioning with the admin identity")

// bindOnly is the JetStream handle of a service that does not provision: reads, publishes and
// binds pass through; the declaring calls fail locally with ErrNotProvisioned, so that a
// least-privilege user never even asks the server (a consumer deleted under a running service
// is then reported by readiness instead of re-created).
type bindOnly struct{ jetstream.JetStream }

func (bindOnly) refuse(what string) error { return fmt.Errorf("%s: %w", what, ErrNotProvisioned) }

func (b bindOnly) CreateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	return nil, b.refuse("create stream")
}
func (b bindOnly) UpdateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	return nil, b.refuse("update stream")
}
func (b bindOnly) CreateOrUpdateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	return nil, b.refuse("create or update stream")
}
func (b bindOnly) DeleteStream(context.Context, string) error { return b.refuse("delete stream") }
func (b bindOnly) CreateConsumer(context.Context, string, jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return nil, b.refuse("create consumer")
}
func (b bindOnly) UpdateConsumer(context.Context, string, jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return nil, b.refuse("update consumer")
}
func (b bindOnly) CreateOrUpdateConsumer(context.Context, string, jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return nil, b.refuse("create or update consumer")
}
func (b bindOnly) DeleteConsumer(context.Context, string, string) error {
	return b.refuse("delete consumer")
}
func (b bindOnly) CreateKeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return nil, b.refuse("create bucket")
}
func (b bindOnly) UpdateKeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return nil, b.refuse("update bucket")
}
func (b bindOnly) CreateOrUpdateKeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return nil, b.refuse("create or update bucket")
}
func (b bindOnly) DeleteKeyValue(context.Context, string) error { return b.refuse("delete bucket") }

// CheckConsumer binds to the named durable consumer without declaring it (a CONSUMER.INFO
// request): an error when it does not exist, a warning when it differs from its declaration
// (the provisioner's settings then rule).
func CheckConsumer(ctx context.Context, js jetstream.JetStream, name string, r topology.Retry, log *slog.Logger) error {
	stream, want, err := topology.Consumer(name, r)
	if err != nil {
		return err
	}
	if want.MaxDeliver > 0 {
		want.MaxDeliver += ReportAttempts
	}
	c, err := js.Consumer(ctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		err = fmt.Errorf("%w: %w", err, ErrNotProvisioned)
	}
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", name, stream, err)
	}
	have := c.CachedInfo().Config
	if have.FilterSubject != want.FilterSubject || !slices.Equal(have.FilterSubjects, want.FilterSubjects) || have.AckWait != want.AckWait ||
		have.MaxDeliver != want.MaxDeliver || have.MaxAckPending != want.MaxAckPending || have.AckPolicy != want.AckPolicy {
		log.Warn("consumer differs from this service's settings; provision with the same LOANFLOW_* settings",
			"consumer", name, "max_deliver", have.MaxDeliver, "want_max_deliver", want.MaxDeliver,
			"ack_wait", have.AckWait, "want_ack_wait", want.AckWait, "max_ack_pending", have.MaxAckPending, "want_max_ack_pending", want.MaxAckPending)
	}
	return nil
}

// CheckBucket opens a KV bucket without declaring it (one direct get, see KV): an error
// wrapping ErrNotProvisioned when it does not exist. Its settings are not compared with the
// declaration, unlike a consumer's: that takes STREAM.INFO, which service users are denied;
// provisioning (EnsureTopology) keeps them as declared.
func CheckBucket(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, want jetstream.KeyValueConfig) (*KV, error) {
	kv, err := BindBucket(ctx, nc, js, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		err = fmt.Errorf("%w: %w", err, ErrNotProvisioned)
	}
	return kv, err
}
