package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadyCheck returns a readiness check for a service: NATS connected, every subscription
// consuming (h, nil for none) and each of streams present (a KV bucket is its stream,
// "KV_<bucket>").
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
			if _, err := js.Stream(ctx, s); err != nil {
				return fmt.Errorf("stream %s: %w", s, err)
			}
		}
		return nil
	}
}
