// Package admin serves a process's operator endpoints on a listener of their own, apart from
// the port Yandex calls: /metrics (Prometheus), /healthz, /readyz and, behind a flag,
// /debug/pprof.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Settings are the admin listener's environment.
type Settings struct {
	// Addr is where the admin listener binds; "off" turns it off (an empty variable takes the
	// default, as every setting does).
	Addr string `env:"LOANFLOW_ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	// Pprof serves /debug/pprof on the admin listener (off by default: profiles cost CPU and
	// show internals).
	Pprof bool `env:"LOANFLOW_PPROF" envDefault:"false"`
}

// Ops is what a process's parts share for operations: one metrics registry and one set of
// readiness checks. Services register into it; the admin listener serves it.
type Ops struct {
	Registry *prometheus.Registry
	Ready    *Readiness
}

// NewOps returns a registry already holding the Go runtime and process collectors.
func NewOps() *Ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Ops{Registry: reg, Ready: &Readiness{}}
}

// Readiness is a set of named checks; a process is ready when every check passes.
type Readiness struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// Add registers a check under name (a later Add with the same name replaces it).
func (r *Readiness) Add(name string, check func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checks == nil {
		r.checks = map[string]func(context.Context) error{}
	}
	r.checks[name] = check
}

// Check runs every check and returns the failures by name (empty when ready).
func (r *Readiness) Check(ctx context.Context) map[string]error {
	r.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(r.checks))
	for name, c := range r.checks {
		checks[name] = c
	}
	r.mu.Unlock()
	failed := map[string]error{}
	for name, c := range checks {
		if err := c(ctx); err != nil {
			failed[name] = err
		}
	}
	if len(checks) == 0 {
		failed["process"] = errors.New("nothing has registered a readiness check yet")
	}
	return failed
}

// Handler serves the admin endpoints of ops; pprof adds /debug/pprof.
func Handler(ops *Ops, pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(ops.Registry, promhttp.HandlerOpts{Registry: ops.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := ops.Ready.Check(ctx)
		body := struct {
			Ready  bool              `json:"ready"`
			Failed map[string]string `json:"failed,omitempty"`
		}{Ready: len(failed) == 0}
		names := make([]string, 0, len(failed))
		for name := range failed {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if body.Failed == nil {
				body.Failed = map[string]string{}
			}
			body.Failed[name] = failed[name].Error()
		}
		w.Header().Set("Content-Type", "application/json")
		if !body.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
	if pprofOn {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve runs the admin listener on ln until ctx ends, then shuts it down. A nil ln (the
// listener turned off) just waits for ctx.
func Serve(ctx context.Context, ln net.Listener, ops *Ops, pprofOn bool, log *slog.Logger) error {
	if ln == nil {
		<-ctx.Done()
		return nil
	}
	srv := &http.Server{Handler: Handler(ops, pprofOn), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("admin listener", "addr", ln.Addr().String(), "pprof", pprofOn)
	select {
	case err := <-done:
		return fmt.Errorf("admin listener: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("admin listener shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin listener: %w", err)
	}
	return nil
}

// Listen binds the admin address from s; "off" (or an empty address, set in code) turns the
// listener off (nil).
func Listen(s Settings) (net.Listener, error) {
	if s.Addr == "" || s.Addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", s.Addr, err)
	}
	return ln, nil
}
