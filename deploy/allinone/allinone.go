// Package allinone composes loanflow into one process: an embedded NATS server with JetStream
// on a data directory, and the services (ingress, scoring, offers, audit and the officers'
// console) connected to it.
// It is what `make run` starts and what the end-to-end tests drive; it is not a service and
// holds no logic of its own beyond wiring and shutdown order.
package allinone

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/embeddednats"
	"github.com/loanflow/loanflow/services/audit"
	"github.com/loanflow/loanflow/services/console"
	"github.com/loanflow/loanflow/services/ingress"
	"github.com/loanflow/loanflow/services/offers"
	"github.com/loanflow/loanflow/services/scoring"
)

// Config is the all-in-one's environment. The services' own settings (sync budget, policy and
// catalog files, retries...) are read into the embedded service configs under their usual
// names; the connection settings are overridden to point at the embedded server.
type Config struct {
	// DataDir holds the JetStream store and the generated secrets.
	DataDir string `env:"LOANFLOW_DATA_DIR" envDefault:"./data"`
	// HTTPAddr is the public endpoint's address.
	HTTPAddr string `env:"LOANFLOW_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// NATSAddr exposes the embedded server to the CLIs and the nats tool; port 0 picks one.
	NATSAddr string `env:"LOANFLOW_NATS_ADDR" envDefault:"127.0.0.1:4222"`
	// SyncAlways fsyncs every JetStream write (slower; survives a machine crash).
	SyncAlways bool `env:"LOANFLOW_NATS_SYNC_ALWAYS" envDefault:"false"`
	// ClientsFile, when set, is imported into the clients bucket at start (CSV or JSON Lines).
	ClientsFile string `env:"LOANFLOW_CLIENTS_FILE"`

	Ingress ingress.Config
	Scoring scoring.Config
	Offers  offers.Config
	Audit   audit.Config
	Console console.Config

	// Ops collects every service's metrics and readiness checks (the admin listener serves
	// them); nil keeps them to the system.
	Ops *admin.Ops `env:"-"`
	// Logger writes every service's logs; nil discards them.
	Logger *slog.Logger `env:"-"`
}

// System is a running all-in-one.
type System struct {
	httpAddr    string
	consoleAddr string
	natsURL     string
	token       string
	srv         *server.Server
	done        chan struct{}
	err         error
}

// HTTPAddr is the address the public endpoint listens on.
func (s *System) HTTPAddr() string { return s.httpAddr }

// ConsoleAddr is the address the officers' console listens on.
func (s *System) ConsoleAddr() string { return s.consoleAddr }

// NATSURL is the embedded server's client URL.
func (s *System) NATSURL() string { return s.natsURL }

// Token is a bearer token the endpoint accepts (the first configured, or the generated one).
func (s *System) Token() string { return s.token }

// Wait blocks until the system has stopped (its context ended, or a service failed) and
// returns the first error.
func (s *System) Wait() error {
	<-s.done
	return s.err
}

// Run starts the system and blocks until ctx ends and it has shut down.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Wait()
}

// Start brings up NATS and the services and returns once the endpoint is listening. Cancel
// ctx to stop; Wait for the shutdown to finish.
func Start(ctx context.Context, cfg Config) (*System, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	phoneKey, err := secret(cfg.Ingress.PhoneKey, filepath.Join(cfg.DataDir, "phone.key"), randomHex(32))
	if err != nil {
		return nil, fmt.Errorf("phone key: %w", err)
	}
	signingKey, err := secret(cfg.Audit.SigningKey, filepath.Join(cfg.DataDir, "audit-signing.key"), randomBase64(32))
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	linkKeys, err := secret(cfg.Offers.LinkKeys, filepath.Join(cfg.DataDir, "link.key"), randomHex(32))
	if err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	tokens := cfg.Ingress.BearerTokens
	if len(tokens) == 0 {
		tok, err := secret("", filepath.Join(cfg.DataDir, "bearer.token"), randomHex(24))
		if err != nil {
			return nil, fmt.Errorf("bearer token: %w", err)
		}
		tokens = []string{tok}
		log.Info("no LOANFLOW_BEARER_TOKENS set: generated a token, kept in the data directory", "token", tok,
			"file", filepath.Join(cfg.DataDir, "bearer.token"))
	}

	host, port, err := splitHostPort(cfg.NATSAddr)
	if err != nil {
		return nil, fmt.Errorf("LOANFLOW_NATS_ADDR: %w", err)
	}
	srv, err := embeddednats.Start(embeddednats.Config{Host: host, Port: port, DataDir: cfg.DataDir, SyncAlways: cfg.SyncAlways})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		embeddednats.Stop(srv)
		return nil, fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	co := cfg.Console
	if co.Addr == "" {
		co.Addr = "127.0.0.1:0" // a config built in code (tests); the environment's default is :8081
	}
	consoleLn, err := net.Listen("tcp", co.Addr)
	if err != nil {
		ln.Close()
		embeddednats.Stop(srv)
		return nil, fmt.Errorf("listen %s (LOANFLOW_CONSOLE_ADDR): %w", co.Addr, err)
	}
	if err := consoleAccounts(&co, cfg.DataDir, log); err != nil {
		ln.Close()
		consoleLn.Close()
		embeddednats.Stop(srv)
		return nil, err
	}

	// Every service connects to the embedded server in process: no TCP hop, same semantics.
	connect := func(b *bus.Settings) []nats.Option {
		b.URL = srv.ClientURL()
		return []nats.Option{nats.InProcessServer(srv)}
	}
	in, sc, of, au := cfg.Ingress, cfg.Scoring, cfg.Offers, cfg.Audit
	in.NATSOptions, sc.NATSOptions, of.NATSOptions, au.NATSOptions = connect(&in.Bus), connect(&sc.Bus), connect(&of.Bus), connect(&au.Bus)
	co.NATSOptions = connect(&co.Bus)
	in.Logger, sc.Logger, of.Logger, au.Logger, co.Logger = log, log, log, log, log
	ops := cfg.Ops
	if ops == nil {
		ops = admin.NewOps()
	}
	in.Ops, sc.Ops, of.Ops, au.Ops, co.Ops = ops, ops, ops, ops, ops
	in.Listener, in.BearerTokens, in.PhoneKey = ln, tokens, phoneKey
	sc.PhoneKey, au.PhoneKey, au.SigningKey = phoneKey, phoneKey, signingKey
	in.LinkKeys, of.LinkKeys = linkKeys, linkKeys
	co.Listener, co.PhoneKey, co.SyncBudget, co.IngressAddr = consoleLn, phoneKey, in.SyncBudget, ln.Addr().String()
	// The officers and the fallback must decide within the deadline scoring gives them.
	sc.AnswerDeadline = in.AnswerDeadline
	if of.PublicURL == "" {
		// Links that work on this machine: https when ingress serves TLS. Yandex needs the
		// public https address, set in LOANFLOW_PUBLIC_URL.
		scheme := "http"
		if in.TLSCert != "" {
			scheme = "https"
		}
		of.PublicURL = scheme + "://" + ln.Addr().String()
	}

	// Declare everything once before the services start, so that they find it in place.
	if err := provision(ctx, srv, in.Bus); err != nil {
		ln.Close()
		consoleLn.Close()
		embeddednats.Stop(srv)
		return nil, err
	}
	if cfg.ClientsFile != "" {
		stats, err := scoring.Import(ctx, sc, cfg.ClientsFile, nil)
		if err != nil {
			ln.Close()
			consoleLn.Close()
			embeddednats.Stop(srv)
			return nil, fmt.Errorf("import %s: %w", cfg.ClientsFile, err)
		}
		for _, e := range stats.Errors {
			log.Warn("client file: bad line skipped", "file", cfg.ClientsFile, "line", e.Line, "reason", e.Reason)
		}
		log.Info("client profiles imported", "file", cfg.ClientsFile, "imported", stats.Imported, "bad_lines", stats.Rejected)
	}

	s := &System{httpAddr: ln.Addr().String(), consoleAddr: consoleLn.Addr().String(), natsURL: srv.ClientURL(), token: tokens[0], srv: srv, done: make(chan struct{})}

	// Shutdown order: ingress stops taking HTTP first; the consumers stop after it, each
	// finishing the events in hand; the server stops last.
	ingressCtx, stopIngress := context.WithCancel(ctx)
	stagesCtx, stopStages := context.WithCancel(context.WithoutCancel(ctx))
	var (
		mu      sync.Mutex
		first   error
		stages  sync.WaitGroup
		inDone  = make(chan struct{})
		failure = func(name string, err error) {
			// Stopped while still starting: a clean stop, not a failure.
			if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
				return
			}
			mu.Lock()
			if first == nil {
				first = fmt.Errorf("%s: %w", name, err)
			}
			mu.Unlock()
			stopIngress()
		}
	)
	for name, run := range map[string]func(context.Context) error{
		"scoring": func(c context.Context) error { return scoring.Run(c, sc) },
		"offers":  func(c context.Context) error { return offers.Run(c, of) },
		"audit":   func(c context.Context) error { return audit.Run(c, au) },
		"console": func(c context.Context) error { return console.Run(c, co) },
	} {
		stages.Add(1)
		go func() { defer stages.Done(); failure(name, run(stagesCtx)) }()
	}
	go func() { defer close(inDone); failure("ingress", ingress.Run(ingressCtx, in)) }()

	go func() {
		<-inDone
		stopStages()
		stages.Wait()
		stopIngress()
		embeddednats.Stop(srv)
		mu.Lock()
		s.err = first
		mu.Unlock()
		close(s.done)
	}()
	log.Info("loanflow all-in-one started", "http", s.httpAddr, "console", s.consoleAddr, "nats", s.natsURL, "data_dir", cfg.DataDir)
	return s, nil
}

// consoleAccounts gives the console its session key and, when no accounts are configured, a
// demo officer and auditor whose passwords are generated into the data directory (and logged,
// like the generated bearer token), so that `make run` has a console one can sign in to.
func consoleAccounts(co *console.Config, dir string, log *slog.Logger) error {
	key, err := secret(co.SessionKey, filepath.Join(dir, "console-session.key"), randomHex(32))
	if err != nil {
		return fmt.Errorf("console session key: %w", err)
	}
	co.SessionKey = key
	if len(co.Users) > 0 || co.UsersFile != "" {
		return nil
	}
	for _, role := range []string{"officer", "auditor"} {
		file := filepath.Join(dir, "console-"+role+".password")
		password, err := secret("", file, randomHex(12))
		if err != nil {
			return fmt.Errorf("console %s password: %w", role, err)
		}
		hash, err := console.HashPassword(password)
		if err != nil {
			return err
		}
		co.Users = append(co.Users, role+":"+role+":"+hash)
		log.Info("no LOANFLOW_CONSOLE_USERS set: generated a console account, its password kept in the data directory",
			"login", role, "role", role, "file", file)
	}
	return nil
}

func provision(ctx context.Context, srv *server.Server, s bus.Settings) error {
	nc, js, err := bus.Connect(srv.ClientURL(), "provision", slog.New(slog.DiscardHandler), nats.InProcessServer(srv))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.EnsureTopology(ctx, js, s); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	return nil
}

// secret returns value when set; otherwise the secret kept in file, writing fresh into it on
// first use so that restarts keep the same secret.
func secret(value, file, fresh string) (string, error) {
	if value != "" {
		return value, nil
	}
	if b, err := os.ReadFile(file); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.WriteFile(file, []byte(fresh+"\n"), 0o600); err != nil {
		return "", err
	}
	return fresh, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand panics rather than return short
	return b
}

func randomHex(n int) string    { return hex.EncodeToString(randomBytes(n)) }
func randomBase64(n int) string { return base64.StdEncoding.EncodeToString(randomBytes(n)) }

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = -1 // the server's "any free port"
	}
	return host, port, nil
}
