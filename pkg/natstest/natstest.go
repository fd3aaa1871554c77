// Package natstest helps tests run against a real NATS server: it starts an embedded server
// with JetStream on a free port and a temporary directory, stops it when the test ends, and
// gives quick test settings and a wait that polls for what the system does.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/embeddednats"
)

// Start returns a running server; its ClientURL() is what services connect to.
func Start(tb testing.TB) *server.Server {
	tb.Helper()
	return StartIn(tb, tb.TempDir())
}

// StartIn starts a server on dir, so that a test can stop it and start another on the same
// data (a restart).
func StartIn(tb testing.TB, dir string) *server.Server {
	tb.Helper()
	return StartAt(tb, dir, -1)
}

// StartAt starts a server on dir listening on port (-1: any free port), so that a restarted
// server is found where clients last saw it.
func StartAt(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	srv, err := embeddednats.Start(embeddednats.Config{Host: "127.0.0.1", Port: port, DataDir: dir})
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	tb.Cleanup(func() { embeddednats.Stop(srv) })
	return srv
}

// Settings are messaging settings for tests: one replica, quick retries, short timeouts.
func Settings(url string) bus.Settings {
	return bus.Settings{
		URL: url, Replicas: 1, PublishTimeout: 2 * time.Second, MaxDeliver: 3,
		BackOff: []time.Duration{10 * time.Millisecond}, AckWait: 5 * time.Second,
		Concurrency: 4, ShutdownTimeout: 5 * time.Second,
	}
}

// WaitFor polls cond until it holds, failing the test after 20 seconds. Tests wait for what
// the system does, never for a fixed time.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
