package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/service"
	"github.com/loanflow/loanflow/pkg/tracing"
	"github.com/loanflow/loanflow/pkg/tracing/otlptest"
)

// quietEnv keeps Serve's logs to errors and its traces off, and gives it an admin address of
// its own.
func quietEnv(t *testing.T) (adminAddr string) {
	t.Helper()
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("LOG_FORMAT", "json")
	t.Setenv("LOANFLOW_PPROF", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	// A port free a moment ago: Serve binds the address itself, as a process does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr = ln.Addr().String()
	ln.Close()
	t.Setenv("LOANFLOW_ADMIN_ADDR", adminAddr)
	return adminAddr
}

func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminDefaults checks the admin settings a process gets from an environment that does
// not name them: loopback port 9090, pprof off.
func TestAdminDefaults(t *testing.T) {
	for _, name := range []string{"LOANFLOW_ADMIN_ADDR", "LOANFLOW_PPROF"} {
		t.Setenv(name, "") // restored after the test
		os.Unsetenv(name)
	}
	var s admin.Settings
	if err := env.Parse(&s); err != nil {
		t.Fatal(err)
	}
	if want := (admin.Settings{Addr: "127.0.0.1:9090", Pprof: false}); s != want {
		t.Errorf("admin settings %+v, want %+v", s, want)
	}
}

// TestServeRunsTheAdminListener runs Serve with LOANFLOW_ADMIN_ADDR and LOANFLOW_PPROF from the
// environment and, from inside the service, reads what an operator would: health, readiness
// from the check the service registered, its metric, and pprof only when the flag says so.
func TestServeRunsTheAdminListener(t *testing.T) {
	type config struct {
		Greeting string `env:"SERVE_TEST_GREETING"`
	}
	for _, tc := range []struct {
		pprof     string
		wantPprof int
	}{
		{"", http.StatusNotFound},
		{"false", http.StatusNotFound},
		{"true", http.StatusOK},
	} {
		t.Run("LOANFLOW_PPROF="+tc.pprof, func(t *testing.T) {
			addr := quietEnv(t)
			t.Setenv("LOANFLOW_PPROF", tc.pprof)
			t.Setenv("SERVE_TEST_GREETING", "hello")
			base := "http://" + addr
			var cfg config
			ran := false
			code := service.Serve("serve-test", &cfg, func(ctx context.Context, log *slog.Logger, ops *admin.Ops) error {
				ran = true
				if cfg.Greeting != "hello" {
					t.Errorf("configuration %+v, want SERVE_TEST_GREETING parsed before run", cfg)
				}
				if code, _ := status(t, base+"/healthz"); code != http.StatusOK {
					t.Errorf("/healthz %d, want 200", code)
				}
				// Nothing registered a readiness check yet: not ready.
				if code, _ := status(t, base+"/readyz"); code != http.StatusServiceUnavailable {
					t.Errorf("/readyz before any check %d, want 503", code)
				}
				ops.Ready.Add("serve-test", func(context.Context) error { return nil })
				if code, body := status(t, base+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
					t.Errorf("/readyz %d %s, want 200 ready", code, body)
				}
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "serve_test_total", Help: "A service's own metric."})
				ops.Registry.MustRegister(c)
				c.Add(3)
				if _, body := status(t, base+"/metrics"); !strings.Contains(body, "serve_test_total 3") || !strings.Contains(body, "go_goroutines") {
					t.Errorf("/metrics lacks the service's counter or the runtime's:\n%.500s", body)
				}
				if code, _ := status(t, base+"/debug/pprof/"); code != tc.wantPprof {
					t.Errorf("/debug/pprof/ %d, want %d", code, tc.wantPprof)
				}
				return nil
			})
			if code != 0 || !ran {
				t.Fatalf("Serve = %d (run called %v), want 0 after run", code, ran)
			}
			// The admin listener stops with the service.
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Error("the admin listener still answers after Serve returned")
			}
		})
	}
}

// TestServeExitStatus checks the status a main exits with for each way a service can end.
func TestServeExitStatus(t *testing.T) {
	type config struct {
		Required string `env:"SERVE_TEST_REQUIRED,required"`
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		run  func(ctx context.Context) error
		want int
	}{
		{"clean stop", nil, func(context.Context) error { return nil }, 0},
		{"failed", nil, func(context.Context) error { return errors.New("broken") }, 1},
		{"SIGTERM", nil, func(ctx context.Context) error {
			// The operator's stop: the context ends and the service returns its error.
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}, 0},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "loud"}, nil, 2},
		{"missing configuration", map[string]string{"SERVE_TEST_REQUIRED": ""}, nil, 2},
		{"bad LOANFLOW_PPROF", map[string]string{"LOANFLOW_PPROF": "sometimes"}, nil, 2},
		{"admin address taken", map[string]string{"LOANFLOW_ADMIN_ADDR": "taken"}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			quietEnv(t)
			t.Setenv("SERVE_TEST_REQUIRED", "set")
			for k, v := range tc.env {
				if k == "LOANFLOW_ADMIN_ADDR" && v == "taken" {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					v = ln.Addr().String()
				}
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k)
				}
			}
			ran := false
			code := service.Serve("serve-test", &config{}, func(ctx context.Context, _ *slog.Logger, _ *admin.Ops) error {
				ran = true
				if tc.run == nil {
					t.Error("run called despite the bad environment")
					return nil
				}
				return tc.run(ctx)
			})
			if code != tc.want {
				t.Errorf("Serve = %d, want %d", code, tc.want)
			}
			if ran != (tc.run != nil) {
				t.Errorf("run called: %v, want %v", ran, tc.run != nil)
			}
		})
	}
}

// TestServeExportsTracesWhenConfigured points OTEL_EXPORTER_OTLP_ENDPOINT at a collector:
// a span the service ends reaches it by the time Serve returns, under the service's name.
func TestServeExportsTracesWhenConfigured(t *testing.T) {
	quietEnv(t)
	collector := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	code := service.Serve("serve-test-traced", &struct{}{}, func(ctx context.Context, _ *slog.Logger, _ *admin.Ops) error {
		_, span := tracing.Tracer().Start(ctx, "serve-test work")
		span.End()
		return nil
	})
	if code != 0 {
		t.Fatalf("Serve = %d, want 0", code)
	}
	if err := collector.Err(); err != nil {
		t.Fatal(err)
	}
	spans := collector.Spans()
	if len(spans) != 1 || spans[0].GetName() != "serve-test work" || spans[0].Service != "serve-test-traced" {
		var got []string
		for _, sp := range spans {
			got = append(got, sp.Service+"/"+sp.GetName())
		}
		t.Errorf("collector received %v, want one span serve-test-traced/serve-test work, flushed at exit", got)
	}
}
