package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestRunWritesResults runs the whole benchmark briefly (both systems built and started as
// processes, one short step each) and checks that it writes valid JSON and a PNG. It asserts
// nothing about the figures: they come from make bench.
func TestRunWritesResults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the all-in-one")
	}
	cfg := DefaultConfig()
	cfg.OutDir = t.TempDir()
	cfg.Rates, cfg.StepDuration = []float64{200}, 3*time.Second
	cfg.BaselineRates, cfg.BaselineStepDuration = []float64{200}, 2*time.Second
	cfg.SearchSteps, cfg.Warmup, cfg.Clients = 0, 0, 200
	var log bytes.Buffer
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	b, err := os.ReadFile(res.JSONFile)
	if err != nil {
		t.Fatal(err)
	}
	var got Result
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("results are not JSON: %v", err)
	}
	if len(got.Loanflow) != 1 || len(got.Baseline) != 1 {
		t.Fatalf("steps: got %d loanflow and %d baseline, want 1 and 1", len(got.Loanflow), len(got.Baseline))
	}
	for _, s := range append(got.Loanflow, got.Baseline...) {
		if s.Sent == 0 || s.Offered != 200 {
			t.Errorf("%s step: sent %d at %v/s, want some at 200/s", s.System, s.Sent, s.Offered)
		}
	}
	if len(got.Targets) == 0 {
		t.Error("no targets evaluated")
	}
	png, err := os.ReadFile(res.PNGFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("%s is not a PNG", res.PNGFile)
	}
}

func TestHolds(t *testing.T) {
	cfg := DefaultConfig()
	good := Step{System: "loanflow", Offered: 1000, Achieved: 990, Sent: 10000, DoneFirst: 0.995,
		FirstAnswer: Latency{P99: 20}, AuditDrainS: 0.1}
	for _, tc := range []struct {
		name string
		edit func(*Step)
		want bool
	}{
		{"good", func(*Step) {}, true},
		{"errors", func(s *Step) { s.Errors = 1 }, false},
		{"failed", func(s *Step) { s.Failed = 1 }, false},
		{"pending", func(s *Step) { s.DoneFirst = 0.98 }, false},
		{"slow", func(s *Step) { s.FirstAnswer.P99 = 150 }, false},
		{"behind", func(s *Step) { s.Achieved = 900 }, false},
		{"audit behind", func(s *Step) { s.AuditDrainS = 5 }, false},
		{"baseline has no audit", func(s *Step) { s.System, s.AuditDrainS = "baseline", 5 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.edit(&s)
			if got, why := holds(cfg, s); got != tc.want {
				t.Errorf("holds = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}
