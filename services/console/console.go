// Package console is the bank officers' web console: the manual underwriting queue of the
// applications scoring referred (loan.application.referred.v1), where an officer takes a case,
// sees what the policy saw and approves within the policy's bounds or rejects
// (loan.underwriting.decided.v1), with the policy's fallback applied when nobody decides by
// the referral's deadline; search by search_id or phone (hashed, never shown); an
// application's timeline from the AUDIT stream; and a dashboard of the last hour.
//
// Pages are rendered on the server with html/template, embedded in the binary, in Russian and
// English. Officers sign in with accounts from configuration (bcrypt hashes); sessions are
// signed cookies; every form carries an anti-forgery token and cross-origin requests are
// refused. It listens on its own address, never on the port Yandex calls.
package console

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/pseudonym"
)

// Config is everything the console reads from its environment.
type Config struct {
	Bus bus.Settings
	// Addr is where the console listens, unless Listener is set.
	Addr string `env:"LOANFLOW_CONSOLE_ADDR" envDefault:"127.0.0.1:8081"`
	// IngressAddr is the port Yandex calls; the console refuses to listen on it.
	IngressAddr string `env:"LOANFLOW_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// Users are the accounts, "login:role:bcrypt-hash" each (role officer or auditor).
	Users []string `env:"LOANFLOW_CONSOLE_USERS"`
	// UsersFile holds more accounts, one per line in the same form.
	UsersFile string `env:"LOANFLOW_CONSOLE_USERS_FILE"`
	// SessionKey signs session cookies (at least 32 bytes); empty generates one per process, so
	// sessions end with a restart and do not carry over between replicas.
	SessionKey string `env:"LOANFLOW_CONSOLE_SESSION_KEY"`
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration `env:"LOANFLOW_CONSOLE_SESSION_TTL" envDefault:"8h"`
	// PhoneKey keys the phone hash, as at ingress: the search hashes a phone to find it.
	PhoneKey string `env:"LOANFLOW_PHONE_KEY"`
	// SyncBudget is ingress's: the dashboard counts a decision within it as synchronous.
	SyncBudget time.Duration `env:"LOANFLOW_SYNC_BUDGET" envDefault:"250ms"`
	// SearchWindow bounds how far back a phone search scans the audit.
	SearchWindow time.Duration `env:"LOANFLOW_CONSOLE_SEARCH_WINDOW" envDefault:"720h"`
	// TLSCert and TLSKey (PEM files) make the console serve HTTPS; both or neither.
	TLSCert string `env:"LOANFLOW_CONSOLE_TLS_CERT"`
	TLSKey  string `env:"LOANFLOW_CONSOLE_TLS_KEY"`
	// InsecureCookies drops the Secure flag and the __Host- prefix from the console's cookies.
	// Cookies are Secure by default: browsers keep them over HTTPS (a TLS-terminating proxy
	// included) and on http://localhost or 127.0.0.1. Only a console served over plain HTTP at
	// another name needs this, and then its session cookie travels in clear: it is refused
	// with TLS or a loopback address, and logged as a warning when used.
	InsecureCookies bool `env:"LOANFLOW_CONSOLE_INSECURE_COOKIES" envDefault:"false"`

	// Ops receives the service's metrics and readiness check; nil keeps them to the service.
	Ops *admin.Ops `env:"-"`
	// Listener, when set, is used instead of listening on Addr (tests and the all-in-one).
	Listener net.Listener `env:"-"`
	// Logger writes the service's logs; nil discards them.
	Logger *slog.Logger `env:"-"`
	// NATSOptions are extra connection options (the all-in-one connects in process).
	NATSOptions []nats.Option `env:"-"`
	// Now is the clock; nil is time.Now (tests move it).
	Now func() time.Time `env:"-"`
}

func (c Config) withDefaults() Config {
	if c.Addr == "" && c.Listener == nil {
		c.Addr = "127.0.0.1:8081"
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 8 * time.Hour
	}
	if c.SearchWindow == 0 {
		c.SearchWindow = 720 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if len(c.PhoneKey) < pseudonym.MinKeyLen {
		errs = append(errs, fmt.Errorf("LOANFLOW_PHONE_KEY: at least %d bytes are required", pseudonym.MinKeyLen))
	}
	if c.SessionKey != "" && len(c.SessionKey) < 32 {
		errs = append(errs, errors.New("LOANFLOW_CONSOLE_SESSION_KEY: at least 32 bytes"))
	}
	if c.SessionTTL < 0 || c.SyncBudget < 0 || c.SearchWindow < 0 {
		errs = append(errs, errors.New("LOANFLOW_CONSOLE_SESSION_TTL, LOANFLOW_SYNC_BUDGET, LOANFLOW_CONSOLE_SEARCH_WINDOW: must not be negative"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("LOANFLOW_CONSOLE_TLS_CERT, LOANFLOW_CONSOLE_TLS_KEY: give both or neither"))
	}
	if c.InsecureCookies && c.TLSCert != "" {
		errs = append(errs, errors.New("LOANFLOW_CONSOLE_INSECURE_COOKIES: the console serves HTTPS (LOANFLOW_CONSOLE_TLS_CERT), where Secure cookies work"))
	}
	if c.InsecureCookies && loopback(c.listenAddr()) {
		errs = append(errs, fmt.Errorf("LOANFLOW_CONSOLE_INSECURE_COOKIES: the console listens on %s, a loopback address, where browsers keep Secure cookies over plain HTTP", c.listenAddr()))
	}
	if c.Listener == nil && samePort(c.Addr, c.IngressAddr) {
		errs = append(errs, fmt.Errorf("LOANFLOW_CONSOLE_ADDR %s: that is the port Yandex calls (LOANFLOW_HTTP_ADDR)", c.Addr))
	}
	return errors.Join(errs...)
}

// listenAddr is where the console listens: the listener's address when one is given.
func (c Config) listenAddr() string {
	if c.Listener != nil {
		return c.Listener.Addr().String()
	}
	return c.Addr
}

// loopback reports whether a listen address is reachable only from this machine: localhost or
// a loopback IP. An empty host or 0.0.0.0 is every interface, so not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// samePort reports whether two listen addresses would share a port on the same host.
func samePort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || any(ha) || any(hb)
}

func (c Config) accounts() (accounts, error) {
	entries := c.Users
	if c.UsersFile != "" {
		lines, err := readAccountsFile(c.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("LOANFLOW_CONSOLE_USERS_FILE: %w", err)
		}
		entries = append(append([]string(nil), entries...), lines...)
	}
	users, err := parseAccounts(entries)
	if err != nil {
		return nil, fmt.Errorf("console accounts: %w", err)
	}
	if len(users) == 0 {
		return nil, errors.New("console accounts: none configured (LOANFLOW_CONSOLE_USERS or LOANFLOW_CONSOLE_USERS_FILE)")
	}
	return users, nil
}

// Run serves the console and keeps the underwriting queue until ctx ends, then stops taking
// HTTP and finishes the requests in flight, finishes the referrals in hand, and drains NATS.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("console config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "console")
	users, err := cfg.accounts()
	if err != nil {
		return err
	}
	hasher, err := pseudonym.New([]byte(cfg.PhoneKey))
	if err != nil {
		return err
	}
	key := []byte(cfg.SessionKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Warn("no LOANFLOW_CONSOLE_SESSION_KEY: sessions are signed with a key of this process only")
	}
	if cfg.InsecureCookies {
		log.Warn("LOANFLOW_CONSOLE_INSECURE_COOKIES: the session cookie is not Secure and travels in clear over plain HTTP; "+
			"anyone on the network path can replay it. Serve the console over HTTPS, or reach it at localhost", "addr", cfg.listenAddr())
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("console TLS: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("console listen %s: %w", cfg.Addr, err)
		}
	}
	defer ln.Close()

	conn, err := bus.Open(ctx, cfg.Bus, "console", log, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, retry := conn.JS, cfg.Bus.MarkerRetry()
	if err := conn.EnsureConsumer(ctx, topology.ConsumerConsole, retry); err != nil {
		return err
	}
	kv, err := conn.EnsureBucket(ctx, topology.UnderwritingBucket(conn.Topology()))
	if err != nil {
		return err
	}
	revKV, err := conn.EnsureBucket(ctx, topology.ConsoleRevocationsBucket(conn.Topology()))
	if err != nil {
		return err
	}
	timeout := cfg.Bus.PublishTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	st := &store{kv: kv, timeout: timeout}
	pub := bus.NewPublisher(js, timeout)
	v := newView(kv, log)
	fd := newFeed(js, cfg.SyncBudget, log)

	ops := cfg.Ops
	if ops == nil {
		ops = admin.NewOps()
	}
	health := &bus.Health{}
	ops.Ready.Add("console", bus.ReadyCheck(conn.NC, js, health, []string{topology.StreamLoans}, topology.StreamAudit, "KV_"+kv.Bucket(), "KV_"+revKV.Bucket()))
	metrics, err := bus.NewMetrics(ops.Registry, js, topology.StreamLoans, topology.ConsumerConsole)
	if err != nil {
		return err
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "loanflow_underwriting_open_cases",
		Help: "Referred applications waiting for an officer's decision (open or taken).",
	}, func() float64 { p, _ := v.list(time.Now()); return float64(len(p)) })
	if err := ops.Registry.Register(open); err != nil {
		return fmt.Errorf("console metrics: %w", err)
	}

	web, err := newServer(serverDeps{
		store: st, pub: pub, view: v, feed: fd, hasher: hasher,
		audit:    &auditReader{js: js, window: cfg.SearchWindow, timeout: 10 * time.Second, limit: 1000},
		sessions: newSessions(key, cfg.SessionTTL, !cfg.InsecureCookies, users, &revocations{kv: revKV, timeout: timeout}),
		log:      log, now: cfg.Now, syncBudget: cfg.SyncBudget,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: web, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { v.run(runCtx) })
	wg.Go(func() { fd.run(runCtx) })
	serveErr := make(chan error, 1)
	go func() {
		var err error
		if tlsCfg != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		serveErr <- err
		stop()
	}()
	log.Info("console", "addr", ln.Addr().String(), "accounts", len(users), "tls", tlsCfg != nil)

	q := &queue{store: st, pub: pub, log: log, now: cfg.Now}
	runErr := bus.Run(runCtx, js, log, cfg.Bus.ShutdownTimeout, bus.Handler{
		Consumer: topology.ConsumerConsole, Stream: topology.StreamLoans, Concurrency: max(cfg.Bus.Concurrency, 1), Retry: retry,
		Handle:   q.handle,
		Failures: bus.Failures{Stage: "console", Retry: retry, Publisher: pub, Logger: log, Metrics: metrics},
		Health:   health,
		Metrics:  metrics,
	})
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(cfg.Bus.ShutdownTimeout, time.Second))
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("console http shutdown", "err", err)
	}
	httpErr := <-serveErr
	wg.Wait()
	return errors.Join(runErr, httpErr)
}
