package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdminEndpoints(t *testing.T) {
	ops := NewOps()
	hits := prometheus.NewCounter(prometheus.CounterOpts{Name: "loanflow_test_hits_total", Help: "Hits."})
	ops.Registry.MustRegister(hits)
	hits.Add(3)
	var natsDown error
	ops.Ready.Add("nats", func(context.Context) error { return natsDown })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, ops, false, slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()

	tests := []struct {
		path     string
		down     error
		wantCode int
		wantBody string
	}{
		{"/healthz", nil, http.StatusOK, "ok"},
		{"/metrics", nil, http.StatusOK, "loanflow_test_hits_total 3"},
		{"/metrics", nil, http.StatusOK, "go_goroutines"},
		{"/readyz", nil, http.StatusOK, `"ready":true`},
		{"/readyz", errors.New("disconnected"), http.StatusServiceUnavailable, `"nats":"disconnected"`},
		{"/debug/pprof/", nil, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		natsDown = tt.down
		code, body := get(t, base+tt.path)
		if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s (down=%v) = %d %q; want %d containing %q", tt.path, tt.down, code, body, tt.wantCode, tt.wantBody)
		}
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestPprofBehindFlag(t *testing.T) {
	h := Handler(NewOps(), true)
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	if code, body := get(t, "http://"+ln.Addr().String()+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index = %d %q", code, body)
	}
}

func TestReadinessWithoutChecksIsNotReady(t *testing.T) {
	if failed := (&Readiness{}).Check(context.Background()); len(failed) == 0 {
		t.Fatal("a process that registered nothing reported ready")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
