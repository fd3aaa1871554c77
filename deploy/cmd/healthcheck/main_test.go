package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheckPassesOnlyOn200(t *testing.T) {
	ready := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// The service binds every interface in a container; the check reaches it on loopback.
	addr := "0.0.0.0:" + port
	if err := check(addr, "/readyz", time.Second); err == nil {
		t.Error("not ready: check passed, want an error")
	}
	ready = true
	if err := check(addr, "/readyz", time.Second); err != nil {
		t.Errorf("ready: %v", err)
	}
	if err := check(addr, "/other", time.Second); err == nil {
		t.Error("other path answering 503: check passed")
	}
	if err := check("", "/readyz", time.Second); err == nil {
		t.Error("admin listener off: check passed")
	}
}
