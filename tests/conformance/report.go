package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Status is a scenario's outcome.
type Status string

// Outcomes of a scenario.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Report is the outcome of one Run.
type Report struct {
	// BaseURL is the API base the scenarios ran against.
	BaseURL string `json:"base_url"`
	// Started is when the run began (UTC).
	Started time.Time `json:"started"`
	// Duration is how long the run took.
	Duration Duration `json:"duration_ms"`
	// Deadline is the longest time to done each application was allowed.
	Deadline Duration `json:"deadline_ms"`
	// Results are the scenarios in the order they ran.
	Results []Result `json:"scenarios"`
	// FirstAnswer summarises the latency of every application's first answer.
	FirstAnswer Latency `json:"first_answer"`
	// TimeToDone summarises, per application, the time from the first call to the done answer.
	TimeToDone Latency `json:"time_to_done"`
	// Passed, Failed and Skipped count the scenarios by outcome.
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// OK reports whether no scenario failed.
func (r Report) OK() bool { return r.Failed == 0 }

// Result returns the result of the named scenario, if it ran.
func (r Report) Result(name string) (Result, bool) {
	i := slices.IndexFunc(r.Results, func(x Result) bool { return x.Name == name })
	if i < 0 {
		return Result{}, false
	}
	return r.Results[i], true
}

// Result is one scenario's outcome: the reasons it failed or was skipped, and its latencies.
type Result struct {
	// Name identifies the scenario (see Scenarios).
	Name string `json:"name"`
	// About says what the scenario checks.
	About string `json:"about"`
	// Status is pass, fail or skip.
	Status Status `json:"status"`
	// Reasons say why the scenario failed, or why it was skipped.
	Reasons []string `json:"reasons,omitempty"`
	// Requests counts the HTTP calls the scenario made.
	Requests int `json:"requests"`
	// Duration is how long the scenario took.
	Duration Duration `json:"duration_ms"`
	// FirstAnswer summarises the latency of the scenario's applications' first answers.
	FirstAnswer Latency `json:"first_answer,omitzero"`
	// TimeToDone summarises the scenario's times from first call to done.
	TimeToDone Latency `json:"time_to_done,omitzero"`
}

// Latency summarises durations with nearest-rank percentiles.
type Latency struct {
	// Count is the number of samples.
	Count int `json:"count"`
	// P50, P90 and P99 are the percentiles, Max the slowest sample.
	P50 Duration `json:"p50_ms"`
	P90 Duration `json:"p90_ms"`
	P99 Duration `json:"p99_ms"`
	Max Duration `json:"max_ms"`
}

// Duration is a time.Duration that JSON writes as milliseconds.
type Duration time.Duration

// MarshalJSON writes d as a number of milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration in milliseconds: %w", err)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// String writes d rounded for people.
func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t >= 10*time.Second:
		return t.Round(100 * time.Millisecond).String()
	case t >= time.Second:
		return t.Round(10 * time.Millisecond).String()
	case t >= time.Millisecond:
		return t.Round(100 * time.Microsecond).String()
	}
	return t.Round(time.Microsecond).String()
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Latency{Count: len(s), P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99), Max: Duration(s[len(s)-1])}
}

// percentile is the nearest-rank percentile q of sorted.
func percentile(sorted []time.Duration, q float64) Duration {
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	return Duration(sorted[min(max(rank, 1), len(sorted))-1])
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: one line per scenario with the reasons under it,
// the latency table, and the verdict.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Conformance of %s (loan_approval partner API)\n", r.BaseURL)
	fmt.Fprintf(&b, "started %s, took %s, deadline to done %s\n\n", r.Started.Format(time.RFC3339), r.Duration, r.Deadline)
	nameW, aboutW := 0, 0
	for _, res := range r.Results {
		nameW = max(nameW, utf8.RuneCountInString(res.Name))
		aboutW = max(aboutW, utf8.RuneCountInString(res.About))
	}
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-4s  %-*s  %-*s  %3d req  %s\n", strings.ToUpper(string(res.Status)), nameW, res.Name, aboutW, res.About, res.Requests, res.Duration)
		for _, reason := range res.Reasons {
			fmt.Fprintf(&b, "        - %s\n", reason)
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency\tn\tp50\tp90\tp99\tmax\t")
	for _, l := range []struct {
		name string
		l    Latency
	}{{"first answer", r.FirstAnswer}, {"time to done", r.TimeToDone}} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", l.name, l.l.Count, l.l.P50, l.l.P90, l.l.P99, l.l.Max)
	}
	tw.Flush()
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\n%d scenarios: %d passed, %d failed, %d skipped — %s\n", len(r.Results), r.Passed, r.Failed, r.Skipped, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}
