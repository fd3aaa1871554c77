package service_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/loanflow/loanflow/pkg/service"
)

// TestReloadsTakesARealSIGHUP sends the test process a real SIGHUP after Reloads returns: the
// signal must reach the reload loop, not end the process (SIGHUP's default action).
func TestReloadsTakesARealSIGHUP(t *testing.T) {
	ch, stop := service.Reloads(nil)
	defer stop()
	// Sent before any loop runs: the registration alone must keep it, as during a start-up.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		service.ReloadOn(ctx, ch, func() { reloaded <- struct{}{} })
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-reloaded:
		case <-time.After(5 * time.Second):
			t.Fatalf("no reload after %s", what)
		}
	}
	wait("a SIGHUP sent before the loop started")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("a SIGHUP sent while the loop runs")
	cancel()
	<-done
}

// TestReloadsKeepsAGivenChannel checks that an injected channel is used as it is and that
// ReloadOn calls reload once per value on it.
func TestReloadsKeepsAGivenChannel(t *testing.T) {
	given := make(chan os.Signal)
	ch, stop := service.Reloads(given)
	defer stop()
	if ch != (<-chan os.Signal)(given) {
		t.Fatal("Reloads replaced the channel it was given")
	}
	n := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		service.ReloadOn(ctx, given, func() { n++ })
	}()
	// given is unbuffered: each send returns once the loop has taken it, so after the third the
	// first two reloads have run.
	for range 3 {
		given <- syscall.SIGHUP
	}
	cancel()
	<-done
	if n != 3 {
		t.Errorf("reload ran %d times for 3 signals, want 3", n)
	}
}
