// Package conformance is a Yandex simulator: it checks any loan_approval partner endpoint over
// plain HTTP, the way Yandex Search calls it, before Yandex's integration health check. It knows
// nothing of loanflow's internals. Every answer is held to contracts/openapi.yaml and to the
// rules of the contract a schema cannot state; every scenario is reported pass, fail or skip
// with its reasons, with the latency of first answers and the time to done.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultDeadline    = 120 * time.Second
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 50
	DefaultOversize    = 1 << 20
)

// Config says which endpoint to check and how.
type Config struct {
	// BaseURL is the API's base, such as http://127.0.0.1:8080/integrations; the endpoint is
	// BaseURL + "/api/banking/loan_approval".
	BaseURL string
	// Token is the bearer token the endpoint accepts; without one the 403 scenarios are skipped.
	Token string
	// Deadline bounds the time from an application's first call to its done answer.
	Deadline time.Duration
	// Timeout bounds one HTTP exchange.
	Timeout time.Duration
	// Concurrency is how many identical applications concurrent_duplicates sends at once.
	Concurrency int
	// OversizeBytes is the size of the body oversized_body sends.
	OversizeBytes int
	// Scenarios, when set, names the only scenarios to run.
	Scenarios []string
	// Strict reports every skipped scenario as failed.
	Strict bool
	// Inputs are the application values that depend on the bank's data; zero fields take the
	// defaults of DefaultInputs.
	Inputs Inputs
}

// Inputs are the application values that depend on the bank's data.
type Inputs struct {
	// Phone is an ordinary applicant the bank makes offers to.
	Phone string
	// LoanAmount is the ordinary loan application's amount in roubles.
	LoanAmount float64
	// LoanTerm is the ordinary loan application's term in months.
	LoanTerm int
	// RejectPhone is an applicant the bank rejects.
	RejectPhone string
	// SeveralPhone is an applicant who gets several loan offers for SeveralAmount and SeveralTerm.
	SeveralPhone string
	// SeveralAmount is the amount of the several-offers application.
	SeveralAmount float64
	// SeveralTerm is the term of the several-offers application.
	SeveralTerm int
}

// DefaultInputs match loanflow's demo data (deploy/demo/clients.csv): an unknown client, a
// stop-listed one, and a grade-A salary client.
func DefaultInputs() Inputs {
	return Inputs{
		Phone: "9001234567", LoanAmount: 200000, LoanTerm: 24,
		RejectPhone:  "9037654321",
		SeveralPhone: "9330445040", SeveralAmount: 1500000, SeveralTerm: 36,
	}
}

func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("base URL %q: want an absolute http(s) URL such as http://127.0.0.1:8080/integrations", c.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return c, fmt.Errorf("base URL %q: no query or fragment, please", c.BaseURL)
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.OversizeBytes == 0 {
		c.OversizeBytes = DefaultOversize
	}
	if c.Deadline < 0 || c.Timeout < 0 || c.Concurrency < 0 || c.OversizeBytes < 0 {
		return c, errors.New("deadline, timeout, concurrency and oversize must not be negative")
	}
	d := DefaultInputs()
	in := &c.Inputs
	for _, f := range []struct {
		v   *string
		def string
	}{{&in.Phone, d.Phone}, {&in.RejectPhone, d.RejectPhone}, {&in.SeveralPhone, d.SeveralPhone}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if in.LoanAmount == 0 {
		in.LoanAmount = d.LoanAmount
	}
	if in.LoanTerm == 0 {
		in.LoanTerm = d.LoanTerm
	}
	if in.SeveralAmount == 0 {
		in.SeveralAmount = d.SeveralAmount
	}
	if in.SeveralTerm == 0 {
		in.SeveralTerm = d.SeveralTerm
	}
	for _, name := range c.Scenarios {
		if !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.name == name }) {
			return c, fmt.Errorf("unknown scenario %q", name)
		}
	}
	return c, nil
}

// ScenarioInfo names one scenario and says what it checks.
type ScenarioInfo struct {
	// Name is what Config.Scenarios and Result.Name call the scenario.
	Name string
	// About says what it checks.
	About string
}

// Scenarios lists every scenario in the order Run runs them.
func Scenarios() []ScenarioInfo {
	out := make([]ScenarioInfo, len(scenarios))
	for i, s := range scenarios {
		out[i] = ScenarioInfo{s.name, s.about}
	}
	return out
}

// Run checks the endpoint at cfg.BaseURL with every scenario, or those cfg.Scenarios names, one
// after the other. Whatever the endpoint answers is in the Report; the error is for a Config
// that cannot be used, or ctx ending (with the scenarios run so far reported).
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	e, err := newEnv(cfg)
	if err != nil {
		return Report{}, err
	}
	defer e.close()
	rep := Report{BaseURL: cfg.BaseURL, Started: time.Now().UTC(), Deadline: Duration(cfg.Deadline)}
	var first, toDone []time.Duration
	for _, s := range scenarios {
		if len(cfg.Scenarios) > 0 && !slices.Contains(cfg.Scenarios, s.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		p := &probe{env: e, in: cfg.Inputs}
		start := time.Now()
		s.run(ctx, p)
		res := p.result(s, time.Since(start), cfg.Strict)
		rep.Results = append(rep.Results, res)
		first = append(first, p.first...)
		toDone = append(toDone, p.toDone...)
	}
	rep.Duration = Duration(time.Since(rep.Started))
	rep.FirstAnswer, rep.TimeToDone = summarise(first), summarise(toDone)
	for _, r := range rep.Results {
		switch r.Status {
		case Pass:
			rep.Passed++
		case Fail:
			rep.Failed++
		case Skip:
			rep.Skipped++
		}
	}
	return rep, ctx.Err()
}

// maxReasons bounds the reasons kept per scenario; the rest are counted.
const maxReasons = 25

// probe is one scenario's run: it sends requests, checks every answer, and collects the
// reasons and latencies. Its methods are safe for concurrent use.
type probe struct {
	env *env
	in  Inputs

	mu       sync.Mutex
	fails    []string
	dropped  int
	skip     string
	first    []time.Duration
	toDone   []time.Duration
	requests int
}

// failf records one reason the scenario fails; a reason already recorded is not repeated.
func (p *probe) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case slices.Contains(p.fails, msg):
	case len(p.fails) >= maxReasons:
		p.dropped++
	default:
		p.fails = append(p.fails, msg)
	}
}

// skipf records why the scenario could not be carried out; a failure still wins.
func (p *probe) skipf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skip = fmt.Sprintf(format, args...)
}

func (p *probe) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fails) > 0
}

func (p *probe) result(s scenario, took time.Duration, strict bool) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := Result{
		Name: s.name, About: s.about, Status: Pass, Requests: p.requests, Duration: Duration(took),
		FirstAnswer: summarise(p.first), TimeToDone: summarise(p.toDone),
	}
	switch {
	case len(p.fails) > 0:
		r.Status, r.Reasons = Fail, slices.Clone(p.fails)
		if p.dropped > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("… and %d more", p.dropped))
		}
	case p.skip != "" && strict:
		r.Status, r.Reasons = Fail, []string{"skipped, and strict mode allows no skip: " + p.skip}
	case p.skip != "":
		r.Status, r.Reasons = Skip, []string{p.skip}
	}
	return r
}
