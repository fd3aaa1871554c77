// Command bench is make bench: it builds the all-in-one and the baseline, runs each as its own
// process under tests/load's open-loop load, steps the offered rate and searches for the
// highest that holds, and writes bench/results/<timestamp>.json and .png. Run it from the
// repository (it finds go.work above the working directory):
//
//	go run ./bench/cmd/bench                         (make bench)
//	go run ./bench/cmd/bench -rates 2000 -step 10s -baseline-rates 4000 -search 0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/loanflow/loanflow/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	var rates, blRates, profile, env string
	flag.StringVar(&rates, "rates", join(cfg.Rates), "loanflow's offered rates, comma-separated, applications/s")
	flag.DurationVar(&cfg.StepDuration, "step", cfg.StepDuration, "how long each loanflow rate is offered")
	flag.StringVar(&blRates, "baseline-rates", join(cfg.BaselineRates), "the baseline's offered rates")
	flag.DurationVar(&cfg.BaselineStepDuration, "baseline-step", cfg.BaselineStepDuration, "how long each baseline rate is offered")
	flag.IntVar(&cfg.SearchSteps, "search", cfg.SearchSteps, "probes of the search for the highest rate that holds (0: none)")
	flag.DurationVar(&cfg.P99Bound, "p99-bound", cfg.P99Bound, "first-answer p99 a step must stay within to hold")
	flag.IntVar(&cfg.Clients, "clients", cfg.Clients, "known clients generated and imported")
	flag.Float64Var(&cfg.UnknownShare, "unknown-share", cfg.UnknownShare, "share of applications from unknown clients")
	flag.DurationVar(&cfg.SyncBudget, "sync-budget", cfg.SyncBudget, "LOANFLOW_SYNC_BUDGET and the baseline's wait")
	flag.StringVar(&profile, "profile-rates", join(cfg.ProfileRates), "loanflow rates at which to take a CPU profile of the all-in-one")
	flag.StringVar(&env, "env", "", "extra environment for the all-in-one, comma-separated KEY=VALUE")
	flag.StringVar(&cfg.OutDir, "out", cfg.OutDir, "results directory (relative to the repository)")
	redraw := flag.String("chart", "", "only draw the chart of this results file again")
	flag.Parse()
	if *redraw != "" {
		png, err := bench.Redraw(*redraw)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", png)
		return
	}
	var err error
	if cfg.Rates, err = parse(rates); err == nil {
		if cfg.BaselineRates, err = parse(blRates); err == nil {
			cfg.ProfileRates, err = parse(profile)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if env != "" {
		cfg.Env = strings.Split(env, ",")
	}
	cfg.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Printf("\nloanflow sustained %.0f/s; baseline sustained %.0f/s; ratio %.2f; loanflow peak RSS %.0f MiB\n",
		res.LoanflowSustained, res.BaselineSustained, res.Ratio, res.PeakRSSMiB)
	for _, t := range res.Targets {
		verdict := "MET"
		if !t.Met {
			verdict = "MISSED"
		}
		fmt.Printf("  %-6s %s: %v (want %s)\n", verdict, t.Name, t.Got, t.Want)
	}
	fmt.Printf("wrote %s and %s\n", res.JSONFile, res.PNGFile)
}

func parse(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func join(fs []float64) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.Join(s, ",")
}
