// Package ingress is loanflow's public edge: the loan_approval endpoint Yandex calls. It
// authenticates and validates each call, records the application in the loan_decisions bucket,
// publishes loan.application.received.v1 once, and answers from the bucket: done within the
// sync budget, or pending with Retry-After for Yandex to poll.
package ingress

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/loanflow/loanflow/contracts/decisions"
	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/pkg/offerlink"
	"github.com/loanflow/loanflow/pkg/pseudonym"
	"github.com/loanflow/loanflow/services/ingress/internal/intake"
)

// Config is everything ingress reads from its environment.
type Config struct {
	Bus bus.Settings
	// Addr is where the public endpoint listens, unless Listener is set.
	Addr string `env:"LOANFLOW_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// BasePath prefixes the API path; Yandex's documentation shows /integrations.
	BasePath string `env:"LOANFLOW_BASE_PATH" envDefault:"/integrations"`
	// BearerTokens are the tokens Yandex may present; several at once allow rotation.
	BearerTokens []string `env:"LOANFLOW_BEARER_TOKENS"`
	// PhoneKey keys the hash that stands in for phone numbers (at least 16 bytes).
	PhoneKey string `env:"LOANFLOW_PHONE_KEY"`
	// LinkKeys verify the tokens of proposal links (comma-separated, the same list as offer
	// assembly's); empty: GET /offers/{token} answers 404.
	LinkKeys string `env:"LOANFLOW_LINK_KEYS"`
	// SyncBudget is how long the first call waits for a decision before answering pending.
	SyncBudget time.Duration `env:"LOANFLOW_SYNC_BUDGET" envDefault:"250ms"`
	// RetryAfter is the poll interval the pending answer suggests (whole seconds, at least 1).
	RetryAfter time.Duration `env:"LOANFLOW_RETRY_AFTER" envDefault:"1s"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `env:"LOANFLOW_MAX_BODY_BYTES" envDefault:"65536"`
	// AnswerDeadline is how long an application may stay undecided before it fails with
	// reason timeout (Yandex is promised an answer within two minutes).
	AnswerDeadline time.Duration `env:"LOANFLOW_ANSWER_DEADLINE" envDefault:"120s"`
	// NATSTimeout bounds every NATS call an HTTP request makes: with NATS unreachable the
	// answer is a quick 500, never a hang.
	NATSTimeout time.Duration `env:"LOANFLOW_NATS_TIMEOUT" envDefault:"2s"`
	// CacheSize is how many final answers are kept in memory to answer polls while NATS is
	// unreachable.
	CacheSize int `env:"LOANFLOW_ANSWER_CACHE" envDefault:"10000"`

	// TLSCert and TLSKey (PEM files) make the public endpoint serve HTTPS; both or neither.
	TLSCert string `env:"LOANFLOW_TLS_CERT"`
	TLSKey  string `env:"LOANFLOW_TLS_KEY"`
	// AllowCIDRs, when set, admits API calls only from these networks (Yandex's ranges); others
	// get 403. Proposal links stay open to everyone.
	AllowCIDRs []string `env:"LOANFLOW_ALLOW_CIDRS"`
	// RateLimit is each bearer token's sustained requests per second (0: unlimited), with
	// RateBurst requests allowed at once; over it the answer is 429 with Retry-After.
	RateLimit float64 `env:"LOANFLOW_RATE_LIMIT" envDefault:"0"`
	RateBurst int     `env:"LOANFLOW_RATE_BURST" envDefault:"200"`
	// MaxInFlight bounds the new applications being recorded and waited for at once; past it
	// an application is answered 429 with Retry-After at once and nothing is recorded (0: no
	// bound). Polls are not bounded.
	MaxInFlight int `env:"LOANFLOW_MAX_IN_FLIGHT" envDefault:"1024"`

	// Ops receives the service's metrics and readiness check (served on the admin listener,
	// never on Addr); nil keeps them to the service.
	Ops *admin.Ops `env:"-"`
	// Listener, when set, is used instead of listening on Addr (tests and the all-in-one).
	Listener net.Listener `env:"-"`
	// Logger writes the service's logs; nil discards them.
	Logger *slog.Logger `env:"-"`
	// NATSOptions are extra connection options (the all-in-one connects in process).
	NATSOptions []nats.Option `env:"-"`
}

// withDefaults fills settings left zero by a config built in code (tests, the all-in-one)
// with the documented defaults.
func (c Config) withDefaults() Config {
	if c.AnswerDeadline == 0 {
		c.AnswerDeadline = 120 * time.Second
	}
	if c.NATSTimeout == 0 {
		c.NATSTimeout = 2 * time.Second
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if len(c.tokens()) == 0 {
		errs = append(errs, errors.New("LOANFLOW_BEARER_TOKENS: at least one token is required"))
	}
	if len(c.PhoneKey) < pseudonym.MinKeyLen {
		errs = append(errs, fmt.Errorf("LOANFLOW_PHONE_KEY: at least %d bytes are required", pseudonym.MinKeyLen))
	}
	if c.SyncBudget < 0 {
		errs = append(errs, errors.New("LOANFLOW_SYNC_BUDGET: must not be negative"))
	}
	if c.AnswerDeadline < 0 || c.NATSTimeout < 0 || c.CacheSize < 0 {
		errs = append(errs, errors.New("LOANFLOW_ANSWER_DEADLINE, LOANFLOW_NATS_TIMEOUT, LOANFLOW_ANSWER_CACHE: must not be negative"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("LOANFLOW_MAX_BODY_BYTES: at least 1024"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("LOANFLOW_TLS_CERT, LOANFLOW_TLS_KEY: give both or neither"))
	}
	if _, err := parseAllowlist(c.AllowCIDRs); err != nil {
		errs = append(errs, err)
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		errs = append(errs, errors.New("LOANFLOW_RATE_LIMIT, LOANFLOW_RATE_BURST: must not be negative"))
	}
	if keys := offerlink.ParseKeys(c.LinkKeys); len(keys) > 0 {
		if _, err := offerlink.NewSigner(keys...); err != nil {
			errs = append(errs, fmt.Errorf("LOANFLOW_LINK_KEYS: %w", err))
		}
	}
	if !strings.HasPrefix(c.BasePath, "/") && c.BasePath != "" {
		errs = append(errs, errors.New("LOANFLOW_BASE_PATH: must start with /"))
	}
	return errors.Join(errs...)
}

func (c Config) tokens() []string {
	var out []string
	for _, t := range c.BearerTokens {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Run serves until ctx ends, then shuts down in order: stop taking HTTP and finish the
// requests in flight, stop the failure consumer after its events in hand, stop the watcher,
// drain the NATS connection.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("ingress config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "ingress")
	hasher, err := pseudonym.New([]byte(cfg.PhoneKey))
	if err != nil {
		return err
	}

	conn, err := bus.Open(ctx, cfg.Bus, "ingress", log, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	nc, js, retry := conn.NC, conn.JS, cfg.Bus.MarkerRetry()
	for _, name := range []string{topology.ConsumerFailures, topology.ConsumerDeadline} {
		if err := conn.EnsureConsumer(ctx, name, retry); err != nil {
			return err
		}
	}
	bucket := topology.DecisionsBucket(conn.Topology())
	kv, err := conn.EnsureBucket(ctx, bucket)
	if err != nil {
		return err
	}
	st := &store{kv: kv, cache: newAnswerCache(cfg.CacheSize, bucket.TTL), leader: newLeaderReader(nc, kv.Bucket())}

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Addr, err)
		}
	}
	retryAfter := max(int(cfg.RetryAfter.Round(time.Second)/time.Second), 1)
	pub := bus.NewPublisher(js, cfg.Bus.PublishTimeout)
	health := &bus.Health{}
	srv := &server{
		log: log, store: st, watch: newWatcher(kv, st.cache, log), pub: pub, natsTimeout: cfg.NATSTimeout,
		connected: nc.IsConnected,
		hasher:    hasher, budget: cfg.SyncBudget, retryAfter: fmt.Sprint(retryAfter), maxBody: cfg.MaxBodyBytes,
		republishWithin: topology.DuplicateWindow - 30*time.Second,
	}
	ops := cfg.Ops
	if ops == nil {
		ops = admin.NewOps()
	}
	if srv.metrics, err = newHTTPMetrics(ops.Registry); err != nil {
		return err
	}
	ops.Ready.Add("ingress", bus.ReadyCheck(nc, js, health, []string{topology.StreamLoans}, "KV_"+kv.Bucket()))
	metrics, err := bus.NewMetrics(ops.Registry, js, topology.StreamLoans, topology.ConsumerFailures, topology.ConsumerDeadline)
	if err != nil {
		return err
	}
	for _, t := range cfg.tokens() {
		srv.tokens = append(srv.tokens, sha256.Sum256([]byte(t)))
	}
	srv.allow, _ = parseAllowlist(cfg.AllowCIDRs) // validated above
	if keys := offerlink.ParseKeys(cfg.LinkKeys); len(keys) > 0 {
		srv.links, _ = offerlink.NewSigner(keys...) // validated above
	} else {
		log.Warn("LOANFLOW_LINK_KEYS is not set: proposal links answer 404")
	}
	srv.limits = newTokenLimits(cfg.RateLimit, cfg.RateBurst)
	if cfg.MaxInFlight > 0 {
		srv.admit = make(chan struct{}, cfg.MaxInFlight)
	}
	httpSrv := &http.Server{
		Handler:           srv.routes(cfg.BasePath),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	wg.Add(1)
	go func() { defer wg.Done(); srv.watch.run(watchCtx) }()

	consCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		failures := bus.Failures{Stage: "ingress", Retry: retry, Logger: log, Metrics: metrics}
		dl := &deadline{store: st, pub: pub, after: cfg.AnswerDeadline}
		if err := bus.Run(consCtx, js, log, cfg.Bus.ShutdownTimeout, bus.Handler{
			Consumer: topology.ConsumerFailures, Stream: topology.StreamLoans, Concurrency: cfg.Bus.Concurrency, Retry: retry,
			Handle: markFailed(st), Failures: failures, Health: health, Metrics: metrics,
		}, bus.Handler{
			Consumer: topology.ConsumerDeadline, Stream: topology.StreamLoans, Concurrency: cfg.Bus.Concurrency, Retry: retry,
			Handle: dl.handle, Failures: failures, Health: health, Metrics: metrics,
		}); err != nil {
			errc <- fmt.Errorf("failure consumer: %w", err)
		}
	}()
	go func() {
		serve := func() error { return httpSrv.Serve(ln) }
		if cfg.TLSCert != "" {
			serve = func() error { return httpSrv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	log.Info("ingress listening", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "", "base_path", cfg.BasePath,
		"sync_budget", cfg.SyncBudget.String(), "answer_deadline", cfg.AnswerDeadline.String())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("ingress shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.Bus.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopConsumers()
	<-consDone
	stopWatch()
	wg.Wait()
	return runErr
}

// markFailed handles loan.application.failed.v1: the application's answer becomes failed
// (a 500 with a message) unless it is already final.
func markFailed(st *store) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		var ev events.ApplicationFailed
		if err := bus.Decode(msg, &ev); err != nil {
			// Undecodable, but the header still says whose it is.
			ev.SearchID, ev.Stage, ev.Reason = msg.Metadata.Get(events.HeaderSearchID), "unknown", events.ReasonPoison
			if ev.SearchID == "" {
				return err
			}
		}
		if !intake.ValidSearchID(ev.SearchID) {
			return nil // no answer can be asked for it: the stage that failed logged it
		}
		return st.markFailed(msg.Context(), ev.SearchID, decisions.Failure{Stage: ev.Stage, Reason: ev.Reason})
	}
}
