// Package natstest starts a real embedded NATS server with JetStream for a test, on a free
// port and a temporary directory, and stops it when the test ends.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

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
	srv, err := embeddednats.Start(embeddednats.Config{Host: "127.0.0.1", Port: -1, DataDir: dir})
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	tb.Cleanup(func() { embeddednats.Stop(srv) })
	return srv
}
