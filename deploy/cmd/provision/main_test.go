package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/natstest"
)

func TestProvisionDeclaresEveryConsumer(t *testing.T) {
	srv := natstest.Start(t)
	s := natstest.Settings(srv.ClientURL())
	ctx := context.Background()
	if err := provision(ctx, s, slog.New(slog.NewTextHandler(io.Discard, nil)), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	nc, js, err := bus.Connect(srv.ClientURL(), "check", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, name := range topology.ConsumerNames() {
		stream, _, _ := topology.Consumer(name, s.Retry())
		if _, err := js.Consumer(ctx, stream, name); err != nil {
			t.Errorf("consumer %s: %v", name, err)
		}
	}
	// Provisioning again changes nothing and succeeds.
	if err := provision(ctx, s, slog.New(slog.DiscardHandler), 10*time.Second); err != nil {
		t.Errorf("second run: %v", err)
	}
}
