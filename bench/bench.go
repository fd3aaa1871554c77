// Package bench measures loanflow end to end on this machine and against the bus's own limit.
//
// It builds the all-in-one and the baseline (package baseline) with go build and runs each as
// a process of its own, so that their CPU (/proc/<pid>/stat) and memory (/proc/<pid>/status)
// are read apart from the load generator's. The load is tests/load's open-loop generator:
// a constant arrival rate, latency from each request's intended send time, every pending
// followed by polls until done. The offered rate is stepped, then searched for the highest
// rate that holds; a run writes <out>/<timestamp>.json and a PNG chart beside it.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/tests/load"
)

// Config drives one run. DefaultConfig holds the figures make bench uses.
type Config struct {
	// Root is the repository (where go.work is); empty finds it above the working directory.
	Root string
	// OutDir receives <timestamp>.json and <timestamp>.png (and profiles).
	OutDir string
	// Rates are loanflow's offered rates, applications/s, each for StepDuration.
	Rates        []float64
	StepDuration time.Duration
	// BaselineRates and BaselineStepDuration are the same for the baseline.
	BaselineRates        []float64
	BaselineStepDuration time.Duration
	// SearchSteps bounds the probes of the search for the highest rate that holds after the
	// steps (0: no search; the sustained rate is then the highest step that held).
	SearchSteps int
	// Warmup is offered at WarmupRate before the first step and not recorded.
	Warmup     time.Duration
	WarmupRate float64
	// A step holds when it has no errors and no failed applications, at least DoneFirstMin
	// answered done on the first call, a first-answer p99 within P99Bound, an achieved rate of
	// at least 95% of the offered one, and (loanflow) the audit caught up within AuditDrainBound
	// of the last answer.
	DoneFirstMin    float64
	P99Bound        time.Duration
	AuditDrainBound time.Duration
	// Clients known clients are generated and imported; UnknownShare of the applications come
	// from phones the bank does not know.
	Clients      int
	UnknownShare float64
	// SyncBudget is the all-in-one's LOANFLOW_SYNC_BUDGET and the baseline's wait.
	SyncBudget time.Duration
	// ProfileRates: during loanflow's steps at these offered rates a CPU profile of the
	// all-in-one is taken (pprof on its admin listener) into OutDir.
	ProfileRates []float64
	// Env is added to the all-in-one's environment (LOANFLOW_* settings to try).
	Env []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultConfig is make bench's run.
func DefaultConfig() Config {
	return Config{
		OutDir:               "bench/results",
		Rates:                []float64{500, 1000, 2000, 4000, 8000},
		StepDuration:         15 * time.Second,
		BaselineRates:        []float64{2000, 4000, 8000, 16000},
		BaselineStepDuration: 10 * time.Second,
		SearchSteps:          4,
		Warmup:               3 * time.Second,
		WarmupRate:           200,
		DoneFirstMin:         0.99,
		P99Bound:             100 * time.Millisecond,
		AuditDrainBound:      2 * time.Second,
		Clients:              5000,
		UnknownShare:         0.3,
		SyncBudget:           250 * time.Millisecond,
		ProfileRates:         []float64{500, 2000},
	}
}

// Latency holds first-answer percentiles, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

// Step is one offered rate held for a while against one system.
type Step struct {
	System string `json:"system"` // loanflow or baseline
	Phase  string `json:"phase"`  // step or search
	// Offered is the offered rate; Achieved the rate applications got their first answer at.
	Offered   float64 `json:"offered_per_s"`
	Achieved  float64 `json:"achieved_per_s"`
	DurationS float64 `json:"duration_s"`
	Sent      int64   `json:"sent"`
	// DoneFirst is the share answered done on the first call.
	DoneFirst    float64  `json:"done_first_share"`
	Done         int64    `json:"done"`
	Pending      int64    `json:"pending_first"`
	Failed       int64    `json:"failed"`
	Errors       int64    `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	FirstAnswer  Latency  `json:"first_answer"`
	ToDoneP99    float64  `json:"to_done_p99_ms"`
	// CPUPer1000 is the system's CPU seconds per 1,000 applications (until the audit caught
	// up); GeneratorCPUPer1000 the load generator's (this process).
	CPUSeconds          float64 `json:"cpu_s"`
	CPUPer1000          float64 `json:"cpu_s_per_1000"`
	GeneratorCPUPer1000 float64 `json:"generator_cpu_s_per_1000"`
	// PeakRSS is the system's peak resident memory during the step; RSS at its end.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RSSMiB     float64 `json:"rss_end_mib"`
	// AuditLag is loanflow's audit backlog (pending + unacked events) at the last answer,
	// AuditDrainS how long it took to reach zero from then.
	AuditLag    int64   `json:"audit_lag,omitempty"`
	AuditDrainS float64 `json:"audit_drain_s,omitempty"`
	Profile     string  `json:"profile,omitempty"`
	Holds       bool    `json:"holds"`
	Why         string  `json:"why,omitempty"`
}

// Target is one of issue 9's targets with what this run measured.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
}

// Result is a whole run, as written to the JSON file.
type Result struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Loanflow []Step    `json:"loanflow"`
	Baseline []Step    `json:"baseline"`
	// Sustained rates are the highest offered rates that held; Ratio is loanflow's over the
	// baseline's.
	LoanflowSustained float64  `json:"loanflow_sustained_per_s"`
	BaselineSustained float64  `json:"baseline_sustained_per_s"`
	Ratio             float64  `json:"ratio_to_baseline"`
	PeakRSSMiB        float64  `json:"loanflow_peak_rss_mib"`
	Targets           []Target `json:"targets"`
	JSONFile          string   `json:"-"`
	PNGFile           string   `json:"-"`
}

// Machine describes where the run was made.
type Machine struct {
	CPUs        int    `json:"cpus"`
	GoVersion   string `json:"go_version"`
	LoadBefore  string `json:"loadavg_before"`
	LoadAfter   string `json:"loadavg_after"`
	Kernel      string `json:"kernel,omitempty"`
	Note        string `json:"note"`
	GeneratorIn string `json:"generator"`
}

// Settings are the parts of Config the figures depend on.
type Settings struct {
	Rates                []float64 `json:"rates"`
	StepDurationS        float64   `json:"step_duration_s"`
	BaselineRates        []float64 `json:"baseline_rates"`
	BaselineStepDuration float64   `json:"baseline_step_duration_s"`
	SearchSteps          int       `json:"search_steps"`
	DoneFirstMin         float64   `json:"done_first_min"`
	P99BoundMs           float64   `json:"p99_bound_ms"`
	AuditDrainBoundS     float64   `json:"audit_drain_bound_s"`
	Clients              int       `json:"clients"`
	UnknownShare         float64   `json:"unknown_share"`
	SyncBudgetMs         float64   `json:"sync_budget_ms"`
	Env                  []string  `json:"env,omitempty"`
}

const token = "bench-token"

// system is one system under test, running.
type system struct {
	name string
	proc *process
	url  string
	// js reads loanflow's audit consumer (nil for the baseline).
	nc *nats.Conn
	js jetstream.JetStream
}

// Run builds and starts the baseline, then the all-in-one, steps the offered rate against
// each, searches for the highest rate that holds, and writes the results.
func Run(ctx context.Context, cfg Config) (_ *Result, err error) {
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, a ...any) { fmt.Fprintf(logw, format+"\n", a...) }
	root := cfg.Root
	if root == "" {
		if root, err = findRoot("."); err != nil {
			return nil, err
		}
	}
	if !filepath.IsAbs(cfg.OutDir) {
		cfg.OutDir = filepath.Join(root, cfg.OutDir)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "loanflow-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			os.RemoveAll(work)
		} else {
			logf("bench: the processes' logs and stores are kept in %s", work)
		}
	}()

	res := &Result{Started: time.Now().UTC(), Machine: machine(), Settings: settingsOf(cfg)}
	stamp := res.Started.Format("20060102T150405Z")
	logf("bench: building the all-in-one and the baseline")
	lfBin, blBin, err := buildBinaries(ctx, root, work)
	if err != nil {
		return nil, err
	}
	phones, err := clientMix(filepath.Join(work, "clients.csv"), cfg.Clients, cfg.UnknownShare, uint64(res.Started.UnixNano()))
	if err != nil {
		return nil, err
	}

	// The baseline first: the bus's own limit on this machine, now.
	bl, err := startProcess(ctx, blBin, []string{"-http", "127.0.0.1:0", "-data", filepath.Join(work, "baseline"),
		"-token", token, "-budget", cfg.SyncBudget.String()}, nil, filepath.Join(work, "baseline.log"), "baseline started")
	if err != nil {
		return nil, err
	}
	blSys := &system{name: "baseline", proc: bl, url: "http://" + bl.http + "/integrations/api/banking/loan_approval"}
	res.Baseline, res.BaselineSustained = steps(ctx, cfg, blSys, cfg.BaselineRates, cfg.BaselineStepDuration, phones, "", logf)
	if err := bl.exited(); err != nil {
		return nil, err
	}
	if err := bl.stop(); err != nil {
		logf("bench: baseline stop: %v", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	env := append([]string{
		"LOANFLOW_DATA_DIR=" + filepath.Join(work, "loanflow"),
		"LOANFLOW_HTTP_ADDR=127.0.0.1:0", "LOANFLOW_NATS_ADDR=127.0.0.1:0", "LOANFLOW_ADMIN_ADDR=127.0.0.1:0",
		"LOANFLOW_CONSOLE_ADDR=127.0.0.1:0", "LOANFLOW_PPROF=true", "LOANFLOW_BEARER_TOKENS=" + token,
		"LOANFLOW_CLIENTS_FILE=" + filepath.Join(work, "clients.csv"),
		"LOANFLOW_SYNC_BUDGET=" + cfg.SyncBudget.String(),
		"LOG_LEVEL=info", "LOG_FORMAT=json",
	}, cfg.Env...)
	lf, err := startProcess(ctx, lfBin, nil, env, filepath.Join(work, "loanflow.log"), "loanflow all-in-one started")
	if err != nil {
		return nil, err
	}
	lfSys := &system{name: "loanflow", proc: lf, url: "http://" + lf.http + "/integrations/api/banking/loan_approval"}
	if lfSys.nc, err = nats.Connect(lf.nats, nats.Name("bench")); err != nil {
		_ = lf.stop()
		return nil, fmt.Errorf("connect to the all-in-one's NATS: %w", err)
	}
	if lfSys.js, err = jetstream.New(lfSys.nc); err != nil {
		lfSys.nc.Close()
		_ = lf.stop()
		return nil, err
	}
	if err := waitReady(ctx, lf.admin); err != nil {
		lfSys.nc.Close()
		_ = lf.stop()
		return nil, err
	}
	profilePrefix := filepath.Join(cfg.OutDir, stamp+"-loanflow-")
	res.Loanflow, res.LoanflowSustained = steps(ctx, cfg, lfSys, cfg.Rates, cfg.StepDuration, phones, profilePrefix, logf)
	if err := lf.exited(); err != nil {
		lfSys.nc.Close()
		return nil, err
	}
	if _, hwm, err := memory(lf.pid()); err == nil {
		res.PeakRSSMiB = mib(hwm)
	}
	for _, s := range res.Loanflow {
		res.PeakRSSMiB = max(res.PeakRSSMiB, s.PeakRSSMiB)
	}
	lfSys.nc.Close()
	if err := lf.stop(); err != nil {
		logf("bench: all-in-one stop: %v", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if res.BaselineSustained > 0 {
		res.Ratio = res.LoanflowSustained / res.BaselineSustained
	}
	res.Targets = targets(res)
	res.Finished = time.Now().UTC()
	res.Machine.LoadAfter = loadavg()

	res.JSONFile = filepath.Join(cfg.OutDir, stamp+".json")
	res.PNGFile = filepath.Join(cfg.OutDir, stamp+".png")
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(res.JSONFile, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := chart(res, res.PNGFile); err != nil {
		return res, fmt.Errorf("chart: %w", err)
	}
	return res, nil
}

// steps runs the rates in order, then searches above the highest that held; it returns the
// steps and the highest offered rate that held.
func steps(ctx context.Context, cfg Config, sys *system, rates []float64, d time.Duration, phones []string, profilePrefix string,
	logf func(string, ...any)) ([]Step, float64) {
	if cfg.Warmup > 0 && cfg.WarmupRate > 0 {
		_ = load.Run(ctx, load.Config{URL: sys.url, Token: token, Rate: cfg.WarmupRate, Duration: cfg.Warmup, Phones: phones, PollDeadline: 30 * time.Second})
		settle(ctx, sys)
	}
	var out []Step
	held, failed := 0.0, math.Inf(1)
	try := func(rate float64, phase string) bool {
		profile := ""
		if profilePrefix != "" && phase == "step" && slices.Contains(cfg.ProfileRates, rate) {
			profile = fmt.Sprintf("%s%.0f.pprof", profilePrefix, rate)
		}
		s := step(ctx, cfg, sys, rate, d, phones, profile)
		s.Phase = phase
		out = append(out, s)
		logf("%s", s.line())
		if s.Holds {
			held = max(held, rate)
		} else {
			failed = min(failed, rate)
		}
		return s.Holds
	}
	for _, r := range rates {
		if ctx.Err() != nil || sys.proc.exited() != nil {
			return out, held
		}
		try(r, "step")
	}
	// Search: double past the top while it holds (halve below the bottom while nothing does),
	// then bisect between what held and what did not, to within 5%.
	for i := 0; i < cfg.SearchSteps && ctx.Err() == nil && sys.proc.exited() == nil; i++ {
		var next float64
		switch {
		case held == 0 && failed < 100:
			return out, held
		case held == 0:
			next = math.Round(failed/2/50) * 50 // nothing held: halve below the lowest
		case math.IsInf(failed, 1):
			next = 2 * held
		case failed-held <= max(50, 0.05*held):
			return out, held
		default:
			next = math.Round((held+failed)/2/50) * 50
		}
		if next <= 0 || next <= held || next >= failed {
			return out, held
		}
		try(next, "search")
	}
	return out, held
}

// step offers rate for d against sys and measures it.
func step(ctx context.Context, cfg Config, sys *system, rate float64, d time.Duration, phones []string, profile string) Step {
	pid := sys.proc.pid()
	cpu0, _ := cpuSeconds(pid)
	self0 := selfCPUSeconds()
	resetOK := resetPeak(pid)
	var (
		peak    uint64
		peakMu  sync.Mutex
		stopMem = make(chan struct{})
		memDone = make(chan struct{})
	)
	go func() {
		defer close(memDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := memory(pid); err == nil {
				peakMu.Lock()
				peak = max(peak, rss)
				peakMu.Unlock()
			}
			select {
			case <-stopMem:
				return
			case <-t.C:
			}
		}
	}()
	var profErr = make(chan error, 1)
	if profile != "" {
		secs := max(int((d - 4*time.Second).Seconds()), 1)
		go func() {
			// Into the steady state: skip the first seconds.
			time.Sleep(min(2*time.Second, d/4))
			profErr <- fetchProfile(ctx, sys.proc.admin, secs, profile)
		}()
	}

	st := load.Run(ctx, load.Config{URL: sys.url, Token: token, Rate: rate, Duration: d, Phones: phones, PollDeadline: 60 * time.Second})
	s := Step{System: sys.name, Offered: rate, DurationS: d.Seconds(), Sent: st.Sent, Done: st.Done, Pending: st.Pending,
		Failed: st.Failed, Errors: st.Errors, ErrorSamples: st.ErrorSamples}
	if sys.js != nil {
		lag, drain := auditDrain(ctx, sys.js, 60*time.Second)
		s.AuditLag, s.AuditDrainS = lag, drain.Seconds()
	}
	cpu1, _ := cpuSeconds(pid)
	self1 := selfCPUSeconds()
	close(stopMem)
	<-memDone
	rss, hwm, _ := memory(pid)
	if resetOK {
		peak = max(peak, hwm)
	}
	s.PeakRSSMiB, s.RSSMiB = mib(peak), mib(rss)
	s.CPUSeconds = cpu1 - cpu0
	if st.Sent > 0 {
		s.CPUPer1000 = s.CPUSeconds / float64(st.Sent) * 1000
		s.GeneratorCPUPer1000 = (self1 - self0) / float64(st.Sent) * 1000
		s.DoneFirst = float64(st.DoneFirst) / float64(st.Sent)
	}
	if st.Answered > 0 {
		s.Achieved = float64(st.Sent) / st.Answered.Seconds()
	}
	ms := func(p float64) float64 { return float64(load.Percentile(st.FirstAnswer, p)) / 1e6 }
	s.FirstAnswer = Latency{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: ms(100)}
	s.ToDoneP99 = float64(load.Percentile(st.ToDone, 99)) / 1e6
	if profile != "" {
		if err := <-profErr; err == nil {
			s.Profile = filepath.Base(profile)
		} else {
			s.ErrorSamples = append(s.ErrorSamples, "profile: "+err.Error())
		}
	}
	s.Holds, s.Why = holds(cfg, s)
	settle(ctx, sys)
	return s
}

// holds says whether a step held, and if not why.
func holds(cfg Config, s Step) (bool, string) {
	var why []string
	if s.Errors > 0 || s.Failed > 0 {
		why = append(why, fmt.Sprintf("%d errors, %d failed", s.Errors, s.Failed))
	}
	if s.DoneFirst < cfg.DoneFirstMin {
		why = append(why, fmt.Sprintf("done on first call %.2f%% < %.0f%%", 100*s.DoneFirst, 100*cfg.DoneFirstMin))
	}
	if p99 := time.Duration(s.FirstAnswer.P99 * 1e6); p99 > cfg.P99Bound {
		why = append(why, fmt.Sprintf("p99 %v > %v", p99.Round(time.Millisecond), cfg.P99Bound))
	}
	if s.Achieved < 0.95*s.Offered {
		why = append(why, fmt.Sprintf("achieved %.0f/s < 95%% of offered", s.Achieved))
	}
	if s.System == "loanflow" && time.Duration(s.AuditDrainS*float64(time.Second)) > cfg.AuditDrainBound {
		why = append(why, fmt.Sprintf("audit %.1fs behind", s.AuditDrainS))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func (s Step) line() string {
	verdict := "holds"
	if !s.Holds {
		verdict = "does not hold: " + s.Why
	}
	return fmt.Sprintf("%-8s %-6s offered %6.0f/s achieved %6.0f/s done-first %6.2f%% p50 %6.1fms p90 %6.1fms p99 %6.1fms p99.9 %6.1fms to-done p99 %6.1fms errors %d cpu %.3fs/1000 (generator %.3f) peak RSS %.0f MiB audit lag %d (%.1fs): %s",
		s.System, s.Phase, s.Offered, s.Achieved, 100*s.DoneFirst, s.FirstAnswer.P50, s.FirstAnswer.P90, s.FirstAnswer.P99, s.FirstAnswer.P999,
		s.ToDoneP99, s.Errors, s.CPUPer1000, s.GeneratorCPUPer1000, s.PeakRSSMiB, s.AuditLag, s.AuditDrainS, verdict)
}

// auditDrain returns the audit consumer's backlog now and how long it takes to clear (up to
// limit).
func auditDrain(ctx context.Context, js jetstream.JetStream, limit time.Duration) (int64, time.Duration) {
	lag := func() int64 {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(c, "LOANS", "audit")
		if err != nil {
			return -1
		}
		info, err := cons.Info(c)
		if err != nil {
			return -1
		}
		return int64(info.NumPending) + int64(info.NumAckPending)
	}
	start := time.Now()
	first := lag()
	for n := first; n != 0 && time.Since(start) < limit && ctx.Err() == nil; n = lag() {
		time.Sleep(50 * time.Millisecond)
	}
	return first, time.Since(start)
}

// settle gives the system a moment between steps (deadline timers, batches in hand).
func settle(ctx context.Context, sys *system) {
	if sys.js != nil {
		auditDrain(ctx, sys.js, time.Minute)
	}
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
}

// waitReady polls the admin listener's /readyz until it answers 200.
func waitReady(ctx context.Context, admin string) error {
	if admin == "" {
		return errors.New("the all-in-one logged no admin listener")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the all-in-one did not become ready within a minute")
}

// fetchProfile takes a CPU profile of secs seconds from the admin listener into file.
func fetchProfile(ctx context.Context, admin string, secs int, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func targets(r *Result) []Target {
	var at2000 *Step
	for i := range r.Loanflow {
		if r.Loanflow[i].Offered == 2000 && r.Loanflow[i].Phase == "step" {
			at2000 = &r.Loanflow[i]
		}
	}
	t := []Target{
		{Name: "sustained applications/s (>= 99% done on first call, error-free, audit caught up)", Want: ">= 5000", Got: r.LoanflowSustained, Met: r.LoanflowSustained >= 5000},
		{Name: "ratio to the baseline", Want: ">= 0.3", Got: round(r.Ratio, 3), Met: r.Ratio >= 0.3},
		{Name: "loanflow peak RSS, MiB (every step)", Want: "<= 300", Got: r.PeakRSSMiB, Met: r.PeakRSSMiB > 0 && r.PeakRSSMiB <= 300},
	}
	if at2000 != nil {
		t = append(t,
			Target{Name: "first-answer p99 at 2000/s, ms", Want: "<= 50", Got: at2000.FirstAnswer.P99, Met: at2000.FirstAnswer.P99 <= 50},
			Target{Name: "peak RSS at 2000/s, MiB", Want: "<= 300", Got: at2000.PeakRSSMiB, Met: at2000.PeakRSSMiB <= 300})
	}
	return t
}

func settingsOf(c Config) Settings {
	return Settings{Rates: c.Rates, StepDurationS: c.StepDuration.Seconds(), BaselineRates: c.BaselineRates,
		BaselineStepDuration: c.BaselineStepDuration.Seconds(), SearchSteps: c.SearchSteps, DoneFirstMin: c.DoneFirstMin,
		P99BoundMs: float64(c.P99Bound) / 1e6, AuditDrainBoundS: c.AuditDrainBound.Seconds(), Clients: c.Clients,
		UnknownShare: c.UnknownShare, SyncBudgetMs: float64(c.SyncBudget) / 1e6, Env: c.Env}
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadBefore: loadavg(),
		GeneratorIn: "this process (the bench), on the same cores as the system under test",
		Note:        "a shared development machine: other builds may run at the same time; see loadavg"}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func mib(b uint64) float64 { return round(float64(b)/(1<<20), 1) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
