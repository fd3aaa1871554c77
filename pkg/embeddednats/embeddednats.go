// Package embeddednats starts a NATS server with JetStream inside the process: the all-in-one
// and the tests use it so that nothing has to be installed to run loanflow.
package embeddednats

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config sizes the embedded server.
type Config struct {
	// Host and Port the server listens on for clients; Port -1 picks a free port.
	Host string
	Port int
	// DataDir holds the JetStream file store (under DataDir/jetstream).
	DataDir string
	// SyncAlways fsyncs every write. Off, the server syncs every two minutes: faster, and an
	// acknowledged write can be lost if the machine (not the process) fails.
	SyncAlways bool
	// ServerName names the server in logs and cluster info.
	ServerName string
}

// Start starts the server and waits until it accepts connections with JetStream enabled.
func Start(cfg Config) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embeddednats: no data directory")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "loanflow"
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 1 << 20,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embeddednats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embeddednats: server not ready within 30s")
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errors.New("embeddednats: JetStream did not start")
	}
	return srv, nil
}

// Stop shuts the server down and waits for it to finish writing.
func Stop(srv *server.Server) {
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}
