// Package baseline is the bus's own limit on this machine, the yardstick loanflow is measured
// against: a minimal HTTP handler that decodes the same body as loanflow's endpoint, publishes
// it to JetStream (an embedded server with file storage, the LOANS stream and the decisions
// bucket declared exactly as the all-in-one declares them), one worker that consumes it and
// KV-Puts a result, and the handler answering when the process's single KV watcher sees that
// result. Nothing else: no scoring, no offers, no audit, no validation beyond decoding.
package baseline

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/embeddednats"
)

// Path is the endpoint, the same as loanflow's under the /integrations base path.
const Path = "/integrations/api/banking/loan_approval"

const (
	subject  = "loan.application.received.v1"
	consumer = "baseline-worker"
)

// Config sizes the baseline.
type Config struct {
	// HTTPAddr is where the endpoint listens (port 0 picks one).
	HTTPAddr string
	// DataDir holds the JetStream file store.
	DataDir string
	// Token is the bearer token the endpoint accepts.
	Token string
	// Budget is how long a request waits for its result before answering pending.
	Budget time.Duration
	// Concurrency is how many messages the worker handles at once (loanflow's stages: 32).
	Concurrency int
	// Logger receives the few lines the baseline writes; nil discards them.
	Logger *slog.Logger
}

// Server is a running baseline.
type Server struct {
	addr string
	done chan struct{}
	err  error
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() string { return s.addr }

// Wait blocks until the server has stopped and returns why.
func (s *Server) Wait() error { <-s.done; return s.err }

// Start brings the baseline up and returns once it listens; cancel ctx to stop it.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Budget <= 0 {
		cfg.Budget = 250 * time.Millisecond
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := embeddednats.Start(embeddednats.Config{Host: "127.0.0.1", Port: -1, DataDir: cfg.DataDir, ServerName: "baseline"})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) { embeddednats.Stop(srv); return nil, err }
	nc, err := nats.Connect(srv.ClientURL(), nats.InProcessServer(srv), nats.Name("baseline"))
	if err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fail(err)
	}
	o := topology.DefaultOptions()
	if _, err := js.CreateOrUpdateStream(ctx, topology.LoansStream(o)); err != nil {
		nc.Close()
		return fail(fmt.Errorf("stream: %w", err))
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, topology.DecisionsBucket(o))
	if err != nil {
		nc.Close()
		return fail(fmt.Errorf("bucket: %w", err))
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, topology.StreamLoans, jetstream.ConsumerConfig{
		Durable: consumer, FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1024,
	})
	if err != nil {
		nc.Close()
		return fail(fmt.Errorf("consumer: %w", err))
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		nc.Close()
		return fail(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	w := &watcher{waiters: map[string][]chan struct{}{}}
	ready := make(chan struct{})
	go w.run(runCtx, kv, log, ready)
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		stop()
		ln.Close()
		nc.Close()
		return fail(errors.New("kv watcher did not start"))
	}
	cc, err := work(cons, kv, cfg.Concurrency, log)
	if err != nil {
		stop()
		ln.Close()
		nc.Close()
		return fail(err)
	}
	h := &handler{js: js, kv: kv, watch: w, budget: cfg.Budget, token: sha256.Sum256([]byte(cfg.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, h.serve)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s := &Server{addr: ln.Addr().String(), done: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	go func() {
		defer close(s.done)
		select {
		case <-runCtx.Done():
		case err := <-served:
			s.err = err
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		cc.Drain()
		<-cc.Closed()
		stop()
		_ = nc.Drain()
		embeddednats.Stop(srv)
	}()
	log.Info("baseline started", "http", s.addr, "nats", srv.ClientURL())
	return s, nil
}

// application is the body loanflow's endpoint takes; a poll has the search_id alone.
type application struct {
	SearchID    string          `json:"search_id"`
	ProductType string          `json:"product_type,omitempty"`
	PhoneNumber string          `json:"phone_number,omitempty"`
	Amount      json.RawMessage `json:"amount,omitempty"`
	Term        int             `json:"term,omitempty"`
}

// result is what the worker stores and the handler answers.
type result struct {
	SearchID    string `json:"search_id"`
	Status      string `json:"status"`
	Decision    string `json:"decision,omitempty"`
	ProductType string `json:"product_type,omitempty"`
}

type handler struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	watch  *watcher
	budget time.Duration
	token  [sha256.Size]byte
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if sum := sha256.Sum256([]byte(tok)); subtle.ConstantTimeCompare(sum[:], h.token[:]) != 1 {
		http.Error(w, `{"message":"forbidden"}`, http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 65536))
	if err != nil {
		http.Error(w, `{"message":"body"}`, http.StatusBadRequest)
		return
	}
	var app application
	if err := json.Unmarshal(body, &app); err != nil || app.SearchID == "" {
		http.Error(w, `{"message":"invalid"}`, http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second+h.budget)
	defer cancel()
	if app.ProductType == "" { // a poll
		h.answer(ctx, w, app.SearchID)
		return
	}
	seen, unsubscribe := h.watch.subscribe(app.SearchID)
	defer unsubscribe()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	if _, err := h.js.PublishMsg(ctx, msg, jetstream.WithMsgID(app.SearchID+":"+subject)); err != nil {
		http.Error(w, `{"message":"publish"}`, http.StatusInternalServerError)
		return
	}
	t := time.NewTimer(h.budget)
	defer t.Stop()
	select {
	case <-seen:
	case <-t.C:
	case <-ctx.Done():
	}
	h.answer(ctx, w, app.SearchID)
}

// answer reads the result with Get, as loanflow does: the watcher only wakes the request.
func (h *handler) answer(ctx context.Context, w http.ResponseWriter, searchID string) {
	w.Header().Set("Content-Type", "application/json")
	e, err := h.kv.Get(ctx, searchID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		w.Header().Set("Retry-After", "1")
		_ = json.NewEncoder(w).Encode(result{SearchID: searchID, Status: "pending"})
	case err != nil:
		http.Error(w, `{"message":"get"}`, http.StatusInternalServerError)
	default:
		_, _ = w.Write(e.Value())
	}
}

// work consumes the received events with concurrency handlers, each KV-Putting a result.
func work(cons jetstream.Consumer, kv jetstream.KeyValue, concurrency int, log *slog.Logger) (jetstream.ConsumeContext, error) {
	msgs := make(chan jetstream.Msg, concurrency)
	for range concurrency {
		go func() {
			for m := range msgs {
				var app application
				if err := json.Unmarshal(m.Data(), &app); err != nil {
					_ = m.Term()
					continue
				}
				b, _ := json.Marshal(result{SearchID: app.SearchID, Status: "done", Decision: "has_approve", ProductType: app.ProductType})
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := kv.Put(ctx, app.SearchID, b)
				cancel()
				if err != nil {
					log.Warn("baseline put", "err", err)
					_ = m.Nak()
					continue
				}
				_ = m.Ack()
			}
		}()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m }, jetstream.PullMaxMessages(concurrency))
	if err != nil {
		close(msgs)
		return nil, fmt.Errorf("consume: %w", err)
	}
	go func() { <-cc.Closed(); close(msgs) }()
	return cc, nil
}

// watcher is the process's single KV watch, waking the requests waiting on a key.
type watcher struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func (w *watcher) run(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger, ready chan<- struct{}) {
	once := sync.OnceFunc(func() { close(ready) })
	for ctx.Err() == nil {
		kw, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
		if err != nil {
			log.Warn("baseline watch", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		once()
		for e := range kw.Updates() {
			if e != nil {
				w.notify(e.Key())
			}
		}
		_ = kw.Stop()
	}
}

func (w *watcher) subscribe(key string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	w.waiters[key] = append(w.waiters[key], c)
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.waiters[key]
		for i, x := range list {
			if x == c {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(w.waiters, key)
		} else {
			w.waiters[key] = list
		}
	}
}

func (w *watcher) notify(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.waiters[key] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
