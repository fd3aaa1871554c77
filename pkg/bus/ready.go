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
// consuming (h nil for none) and each of streams present (a KV bucket is its stream,
// "KV_<bucket>"), without the stream API, which service users are denied:
//   - a stream holding one of h's consumers is proven by each such consumer's CONSUMER.INFO
//     (the service's own consumer, which readiness must find anyway);
//   - any other stream by a direct get (AUDIT and the buckets allow them), whose "not found"
//     still comes from the stream; a missing stream has nobody to answer it. For a bucket it
//     reads a key nobody writes; for a stream, its first message.
//
// A stream with neither (LOANS before the subscriptions start, or for a service that reads it
// without h) is reported not ready.
func ReadyCheck(nc *nats.Conn, js jetstream.JetStream, h *Health, streams ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats not connected")
		}
		if h != nil {
			if err := h.Err(); err != nil {
				return err
			}
		}
		for _, s := range streams {
			if err := streamReady(ctx, nc, js, h, s); err != nil {
				return err
			}
		}
		return nil
	}
}

func streamReady(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, h *Health, stream string) error {
	if consumers := h.consumersOn(stream); len(consumers) > 0 {
		for _, c := range consumers {
			if _, err := js.Consumer(ctx, stream, c); err != nil {
				return fmt.Errorf("consumer %s on %s: %w", c, stream, err)
			}
		}
		return nil
	}
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
