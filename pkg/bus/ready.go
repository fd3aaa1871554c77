package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadyCheck returns a readiness check for a service: NATS connected, every subscription of h
// consuming (h nil for none) and each stream it names present (a KV bucket is its stream,
// "KV_<bucket>"), without the stream API, which service users are denied:
//   - consumed are the streams the service reads through h's consumers: each is proven by those
//     consumers' CONSUMER.INFO (which readiness must find anyway), and is not ready until a
//     subscription on it is tracked. It is never probed otherwise: the service's user may read
//     it only through its consumer, and a direct get would be a permission violation;
//   - read are the streams and buckets it reads by direct gets (AUDIT, the buckets), each
//     proven by one, whose "not found" still comes from the stream; a missing stream has
//     nobody to answer it. For a bucket it reads a key nobody writes; for a stream, its first
//     message.
func ReadyCheck(nc *nats.Conn, js jetstream.JetStream, h *Health, consumed []string, read ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats not connected")
		}
		if h != nil {
			if err := h.Err(); err != nil {
				return err
			}
		}
		for _, s := range consumed {
			if err := consumersReady(ctx, js, h, s); err != nil {
				return err
			}
		}
		for _, s := range read {
			if err := streamReady(ctx, nc, s); err != nil {
				return err
			}
		}
		return nil
	}
}

func consumersReady(ctx context.Context, js jetstream.JetStream, h *Health, stream string) error {
	consumers := h.consumersOn(stream)
	if len(consumers) == 0 {
		return fmt.Errorf("no subscription on %s yet", stream)
	}
	for _, c := range consumers {
		if _, err := js.Consumer(ctx, stream, c); err != nil {
			return fmt.Errorf("consumer %s on %s: %w", c, stream, err)
		}
	}
	return nil
}

func streamReady(ctx context.Context, nc *nats.Conn, stream string) error {
	var err error
	if bucket, ok := strings.CutPrefix(stream, "KV_"); ok {
		_, err = DirectGetLast(ctx, nc, stream, "$KV."+bucket+"."+probeKey)
	} else {
		_, err = DirectGet(ctx, nc, stream, DirectRequest{Seq: 1, NextFor: ">"})
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	return nil
}
