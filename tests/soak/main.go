// Command soak runs the all-in-one in this process under a steady load for a long time and
// checks that it holds: no errors, and goroutines and memory back near where they started.
//
//	go run ./tests/soak -duration 10m -rate 1000     (make soak)
//
// The load generator runs in the same process (loopback only), so the figures include it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/bus"
	"github.com/loanflow/loanflow/tests/load"
)

func main() {
	var (
		duration   = flag.Duration("duration", 10*time.Minute, "how long the load is offered")
		rate       = flag.Float64("rate", 1000, "applications per second")
		warmup     = flag.Duration("warmup", 15*time.Second, "load before the starting figures are taken")
		clients    = flag.String("clients", "deploy/demo/clients.csv", "client profiles to import")
		goroutines = flag.Int("max-goroutine-growth", 100, "goroutines allowed above the start, once the load is over")
		rssGrowth  = flag.Int("max-rss-growth-mib", 64, "resident memory allowed above the start, in MiB")
		heapOut    = flag.String("heap-profile", "", "write a heap profile here when the load is over")
	)
	flag.Parse()
	heapProfile = *heapOut
	if err := run(*duration, *rate, *warmup, *clients, *goroutines, *rssGrowth); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, rate float64, warmup time.Duration, clients string, maxGoroutines, maxRSSMiB int) error {
	dir, err := os.MkdirTemp("", "loanflow-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cfg allinone.Config
	cfg.DataDir, cfg.HTTPAddr, cfg.NATSAddr, cfg.ClientsFile = dir, "127.0.0.1:0", "127.0.0.1:0", clients
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg.Ingress.BearerTokens, cfg.Ingress.BasePath = []string{"soak"}, "/integrations"
	cfg.Ingress.SyncBudget, cfg.Ingress.RetryAfter, cfg.Ingress.MaxBodyBytes = 250*time.Millisecond, time.Second, 65536
	for _, b := range []*bus.Settings{&cfg.Ingress.Bus, &cfg.Scoring.Bus, &cfg.Offers.Bus, &cfg.Audit.Bus} {
		*b = bus.Settings{Replicas: 1, PublishTimeout: 2 * time.Second, MaxDeliver: 5, BackOff: []time.Duration{time.Second},
			AckWait: 30 * time.Second, Concurrency: 32, ShutdownTimeout: 15 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, err := allinone.Start(ctx, cfg)
	if err != nil {
		return err
	}
	lc := load.Config{URL: "http://" + sys.HTTPAddr() + "/integrations/api/banking/loan_approval", Token: "soak", Rate: rate}

	fmt.Printf("soak: %v at %.0f applications/s after %v of warm-up\n", duration, rate, warmup)
	lc.Duration = warmup
	if w := load.Run(ctx, lc); w.Errors > 0 {
		return fmt.Errorf("warm-up: %d errors, e.g. %v", w.Errors, w.ErrorSamples)
	}
	g0, rss0 := sample()
	lc.Duration = duration
	st := load.Run(ctx, lc)
	time.Sleep(2 * time.Second) // let the last answers' work (audit, deadline timers) settle
	g1, rss1 := sample()
	if heapProfile != "" {
		if err := writeHeap(heapProfile); err != nil {
			return err
		}
	}

	fmt.Printf("applications: offered %d, sent %d, done %d (%d on the first call), failed %d, errors %d\n",
		st.Offered, st.Sent, st.Done, st.DoneFirst, st.Failed, st.Errors)
	fmt.Printf("achieved %.0f/s; first answer p50 %v p99 %v; time to done p99 %v\n", float64(st.Sent)/st.Elapsed.Seconds(),
		load.Percentile(st.FirstAnswer, 50), load.Percentile(st.FirstAnswer, 99), load.Percentile(st.ToDone, 99))
	fmt.Printf("goroutines: %d at start, %d at end (bound +%d)\n", g0, g1, maxGoroutines)
	fmt.Printf("RSS: %d MiB at start, %d MiB at end (bound +%d MiB)\n", rss0>>20, rss1>>20, maxRSSMiB)

	cancel()
	if err := sys.Wait(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	var problems []string
	if st.Errors > 0 || st.Failed > 0 {
		problems = append(problems, fmt.Sprintf("%d errors and %d failed applications, e.g. %v", st.Errors, st.Failed, st.ErrorSamples))
	}
	if g1 > g0+maxGoroutines {
		problems = append(problems, fmt.Sprintf("goroutines grew from %d to %d", g0, g1))
	}
	if rss1 > rss0+uint64(maxRSSMiB)<<20 {
		problems = append(problems, fmt.Sprintf("RSS grew from %d to %d MiB", rss0>>20, rss1>>20))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	fmt.Println("soak: PASS")
	return nil
}

// heapProfile, when set, is where the heap profile is written once the load is over.
var heapProfile string

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// sample returns the goroutine count and the resident memory after a collection that returns
// freed memory to the OS, so that what is left is what the process holds.
func sample() (int, uint64) {
	debug.FreeOSMemory()
	return runtime.NumGoroutine(), rss()
}

// rss reads the process's resident set size from /proc (Linux).
func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
