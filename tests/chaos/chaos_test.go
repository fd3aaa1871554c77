// Package chaos_test runs loanflow the way it runs in production and breaks it under load.
//
// Three nats-server processes (built from the version tests/go.mod pins) form a JetStream
// cluster on loopback, with sync_interval: always; the services run as their real binaries
// (ingress, two scoring replicas, offers, audit) with LOANFLOW_NATS_REPLICAS=3 and the cluster's
// three URLs. A paced, open-loop HTTP load of unique applications (loans and cards; a known, an
// unknown and a stop-listed client) runs while, at fixed fractions of the run, NATS server n2 is
// SIGKILLed (20%) and restarted on its store (35%), scoring replica 1 is SIGKILLed (45%), and
// ingress gets SIGTERM (60%) and is started again (65%).
//
// Then every application that got an HTTP 200 must reach done, or failed (a 500 with a
// message) with a loan.application.failed.v1 that gives a reason; none may be lost. Every
// search_id has at most one loan.decision.made.v1 and every done one exactly one; every LOANS
// event is recorded in AUDIT exactly once (source_seq); and the real `audit verify` passes.
// One line reports sent, accepted, done, failed, lost, duplicates and audited.
//
// The short run (40 applications/s for 30 s) is part of make test and is skipped with -short.
// A long run:
//
//	LOANFLOW_CHAOS_DURATION=5m LOANFLOW_CHAOS_RATE=200 go test -v -count=1 -timeout 30m -run TestClusterChaos ./tests/chaos/
//
// Environment:
//
//	LOANFLOW_CHAOS_DURATION       how long the load runs (default 30s)
//	LOANFLOW_CHAOS_RATE           applications per second, open loop (default 40)
//	LOANFLOW_CHAOS_POLL_DEADLINE  how long accepted applications have, after the load, to become
//	                              done or failed (default 60s)
//	LOANFLOW_CHAOS_KEEP           when set, keep the working directory (logs, configurations,
//	                              stores) and print where it is
//
// Binaries are built with go build into $TMPDIR/loanflow-chaos-bin (relinked only when the
// sources changed). Every child is killed when the test ends, and by the kernel if the test
// process dies first (Linux).
package chaos_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// settings of one run.
type settings struct {
	duration, pollDeadline time.Duration
	rate                   float64
	keep                   bool
}

func readSettings(t *testing.T) settings {
	t.Helper()
	s := settings{duration: 30 * time.Second, pollDeadline: 60 * time.Second, rate: 40}
	for _, d := range []struct {
		env string
		out *time.Duration
	}{{"LOANFLOW_CHAOS_DURATION", &s.duration}, {"LOANFLOW_CHAOS_POLL_DEADLINE", &s.pollDeadline}} {
		if v := os.Getenv(d.env); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed <= 0 {
				t.Fatalf("%s=%q: want a positive duration such as 5m", d.env, v)
			}
			*d.out = parsed
		}
	}
	if v := os.Getenv("LOANFLOW_CHAOS_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 5000 {
			t.Fatalf("LOANFLOW_CHAOS_RATE=%q: want applications per second, e.g. 200", v)
		}
		s.rate = r
	}
	s.keep = os.Getenv("LOANFLOW_CHAOS_KEEP") != ""
	return s
}

// event is one entry of the chaos timeline.
type event struct {
	at   time.Duration
	what string
}

// timeline records what the schedule did, and when, from the start of the load.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	evs   []event
	errs  []error
}

func (tl *timeline) add(format string, a ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.evs = append(tl.evs, event{time.Since(tl.start).Round(10 * time.Millisecond), fmt.Sprintf(format, a...)})
}

func (tl *timeline) fail(err error) {
	tl.add("ERROR %v", err)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.errs = append(tl.errs, err)
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, e := range tl.evs {
		fmt.Fprintf(&b, "  t+%-8v %s\n", e.at, e.what)
	}
	return b.String()
}

// TestClusterChaos is described in the package comment.
func TestClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped with -short")
	}
	set := readSettings(t)
	if dl, ok := t.Deadline(); ok {
		if need := set.duration + set.pollDeadline + 3*time.Minute; time.Until(dl) < need {
			t.Fatalf("a %v run needs about %v: raise go test's -timeout", set.duration, need.Round(time.Minute))
		}
	}
	began := time.Now()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	dir := t.TempDir()
	if set.keep {
		if dir, err = os.MkdirTemp("", "loanflow-chaos-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("working directory kept: %s", dir)
	}
	bin := filepath.Join(os.TempDir(), "loanflow-chaos-bin")
	buildBinaries(t, root, bin)
	t.Logf("binaries built in %v", time.Since(began).Round(100*time.Millisecond))

	h := newHarness(t, root, dir, bin)
	cl, err := startCluster(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster up at %s", cl.urls())

	httpPorts, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPorts[0])
	token := randomHex(16)
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	signingKey := base64.StdEncoding.EncodeToString(seed)
	env := childEnv(
		"NATS_URL="+cl.urls(),
		"LOANFLOW_NATS_REPLICAS=3",
		"LOANFLOW_PHONE_KEY=chaos-phone-key-"+randomHex(16),
		"LOANFLOW_LINK_KEYS=chaos-link-key-"+randomHex(16),
		"LOANFLOW_PUBLIC_URL=https://partner.loanflow.example",
		"LOANFLOW_AUDIT_SIGNING_KEY="+signingKey,
		"LOANFLOW_BEARER_TOKENS="+token,
		"LOANFLOW_HTTP_ADDR="+httpAddr,
		"LOANFLOW_SYNC_BUDGET=250ms",
		"LOG_LEVEL=warn",
	)

	if out, err := h.run(time.Minute, "scoring", env, "import-clients", "deploy/demo/clients.csv"); err != nil {
		t.Fatalf("scoring import-clients: %v\n%s", err, out)
	}
	procs := map[string]*proc{}
	for _, name := range serviceNames {
		if procs[name], err = h.start(name, binaryOf(name), env); err != nil {
			t.Fatal(err)
		}
	}
	nc, js, err := cl.connect("chaos-checker")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	restarts, err := waitReady(h, js, env, httpAddr, procs, 60*time.Second)
	for _, r := range restarts {
		t.Logf("start-up: %s", r)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("services ready %v after start", time.Since(began).Round(100*time.Millisecond))

	// The load, and the schedule alongside it.
	e := newEndpoint(httpAddr, token)
	apps := newApplications(randomHex(4), int(set.rate*set.duration.Seconds()))
	tl := &timeline{start: time.Now().Add(100 * time.Millisecond)}
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		runSchedule(tl, set.duration, cl, h, procs, env)
	}()
	drive(e, apps, set.rate, tl.start)
	tl.add("load over: %d applications offered", len(apps))
	chaos.Wait()

	// Every accepted application must become final.
	pollStart := time.Now()
	pollAll(e, apps, pollStart.Add(set.pollDeadline))
	tl.add("polls over after %v", time.Since(pollStart).Round(10*time.Millisecond))
	t.Logf("timeline:\n%s", tl)
	for _, err := range tl.errs {
		t.Errorf("schedule: %v", err)
	}

	r := report{sent: len(apps), startupRestarts: len(restarts)}
	var lost []*application
	for _, a := range apps {
		switch {
		case a.accepted():
			r.accepted++
			if a.first == "done" {
				r.doneFirst++
			}
			switch a.outcome {
			case outcomeDone:
				r.done++
			case outcomeFailed:
				r.failed++
			default:
				r.lost++
				lost = append(lost, a)
			}
		case a.refused:
			r.refused++
		case a.status == 0:
			r.transport++
		case a.status >= 500:
			r.serverErrors++
		default:
			r.otherStatus++
			if r.otherStatus <= 5 {
				t.Errorf("application %s answered %s: the driver sent something ingress rejects", a.id, a.first)
			}
		}
	}

	// The streams: decisions per search_id, and the audit of every event.
	caught, err := waitAuditCaughtUp(js, 2*time.Minute)
	if err != nil {
		t.Errorf("audit did not catch up with LOANS: %v", err)
	}
	scanTimeout := 2*time.Minute + time.Duration(len(apps))*time.Millisecond
	loans, err := scanLoans(js, caught, scanTimeout)
	if err != nil {
		t.Fatal(err)
	}
	auditLast, err := streamLast(js, streamAudit)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := scanAudit(js, auditLast, scanTimeout)
	if err != nil {
		t.Fatal(err)
	}
	hist := histories(loans)
	var dupDecisions, noDecision, noReason []string
	for id, hs := range hist {
		if n := hs.counts[typeDecisionMade]; n > 1 {
			r.duplicates += n - 1
			dupDecisions = append(dupDecisions, fmt.Sprintf("%s ×%d %v", id, n, hs.counts))
		}
	}
	for _, a := range apps {
		hs := hist[a.id]
		switch a.outcome {
		case outcomeDone:
			if hs == nil || hs.counts[typeDecisionMade] == 0 {
				noDecision = append(noDecision, a.id)
			}
		case outcomeFailed:
			if hs == nil || !hasReason(hs.reasons) {
				noReason = append(noReason, a.id)
			}
		}
	}
	ac := checkAudit(loans, recs, 1)
	r.audited, r.events = ac.recorded, len(loans)

	verifyOut, verifyErr := h.run(5*time.Minute, "audit", childEnv("NATS_URL="+cl.urls(), "LOANFLOW_AUDIT_SIGNING_KEY="+signingKey), "verify")
	r.verify = verifyOut

	t.Logf("consumers:\n%s", consumerStates(js))
	t.Logf("failures by stage/reason: %v", failureReasons(apps, hist))
	t.Logf("chaos: %s", r.line(set))

	// The verdict.
	if r.lost > 0 {
		var b strings.Builder
		for i, a := range lost {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(lost)-20)
				break
			}
			var counts map[string]int
			if hs := hist[a.id]; hs != nil {
				counts = hs.counts
			}
			fmt.Fprintf(&b, "  %s sent at t+%v: first %q, last poll %q, LOANS %v, bucket %s\n",
				a.id, a.sentAt.Round(time.Millisecond), a.first, a.last, counts, decisionRecord(js, a.id))
		}
		t.Errorf("lost = %d, want 0: accepted (HTTP 200) but not done or failed %v after the load:\n%s", r.lost, set.pollDeadline, b.String())
	}
	if len(dupDecisions) > 0 {
		t.Errorf("duplicates = %d, want 0: search_ids with more than one %s: %s", r.duplicates, typeDecisionMade, firstN(dupDecisions, 20))
	}
	if len(noDecision) > 0 {
		t.Errorf("%d applications answered done without a %s in LOANS: %s", len(noDecision), typeDecisionMade, firstN(noDecision, 20))
	}
	if len(noReason) > 0 {
		t.Errorf("%d applications answered failed without a %s giving a reason: %s", len(noReason), typeFailed, firstN(noReason, 20))
	}
	if !ac.ok() {
		t.Errorf("AUDIT against LOANS (1..%d): got %d of %d events recorded; missing %s; recorded twice %s; unknown source_seq %s; misnumbered %s",
			caught, ac.recorded, len(loans), firstN(ac.missing, 20), firstN(ac.duplicated, 10), firstN(ac.unknown, 10), firstN(ac.misnumber, 10))
	}
	if verifyErr != nil {
		t.Errorf("audit verify: %v, want exit 0:\n%s", verifyErr, verifyOut)
	}
	if r.accepted == 0 {
		t.Error("accepted = 0: the run proves nothing")
	}
	for _, p := range h.crashed() {
		t.Errorf("%s exited on its own: %v\n%s", p.name, p.waitErr, tail(p.logPath, 20, 4<<10))
	}
	if r.lost > 0 || !ac.ok() || r.duplicates > 0 {
		t.Logf("bad run of %v", time.Since(began).Round(time.Second))
	}
}

// report is the run's counts.
type report struct {
	sent, accepted, doneFirst, done, failed, lost int
	refused, transport, serverErrors, otherStatus int
	duplicates, audited, events                   int
	startupRestarts                               int
	verify                                        string
}

func (r report) line(s settings) string {
	return fmt.Sprintf("%v at %.0f/s: sent=%d accepted=%d (done at once %d) done=%d failed=%d lost=%d duplicates=%d audited=%d/%d LOANS events; "+
		"not accepted: refused=%d other-transport=%d 5xx=%d other=%d; start-up restarts=%d; verify: %s",
		s.duration, s.rate, r.sent, r.accepted, r.doneFirst, r.done, r.failed, r.lost, r.duplicates, r.audited, r.events,
		r.refused, r.transport, r.serverErrors, r.otherStatus, r.startupRestarts, r.verify)
}

func hasReason(reasons []string) bool {
	for _, r := range reasons {
		if !strings.HasSuffix(r, "/") {
			return true
		}
	}
	return false
}

// failureReasons counts the failure events of the failed accepted applications.
func failureReasons(apps []*application, hist map[string]*history) map[string]int {
	out := map[string]int{}
	for _, a := range apps {
		if a.outcome != outcomeFailed {
			continue
		}
		if hs := hist[a.id]; hs != nil {
			for _, r := range hs.reasons {
				out[r]++
			}
		}
	}
	return out
}

// runSchedule breaks the system at fixed fractions of the load's duration.
func runSchedule(tl *timeline, d time.Duration, cl *cluster, h *harness, procs map[string]*proc, env []string) {
	at := func(frac float64) {
		if wait := time.Until(tl.start.Add(time.Duration(frac * float64(d)))); wait > 0 {
			time.Sleep(wait)
		}
	}
	n2 := cl.nodes[1]

	at(0.20)
	if err := n2.proc.kill(); err != nil {
		tl.fail(err)
	}
	tl.add("SIGKILL nats %s", n2.name)

	at(0.35)
	if err := cl.start(n2); err != nil {
		tl.fail(err)
	} else {
		tl.add("nats %s restarted on its store", n2.name)
		go func() { // recovery is reported, not waited for: the schedule goes on
			if err := cl.waitHealthy(n2, false, 2*time.Minute); err != nil {
				tl.add("nats %s not current: %v", n2.name, err)
				return
			}
			tl.add("nats %s healthy (streams and consumers current)", n2.name)
		}()
	}

	at(0.45)
	if err := procs["scoring-1"].kill(); err != nil {
		tl.fail(err)
	}
	tl.add("SIGKILL scoring-1")

	at(0.60)
	ing := procs["ingress"]
	if err := ing.signal(syscall.SIGTERM); err != nil {
		tl.fail(err)
	}
	tl.add("SIGTERM ingress")
	if err := ing.wait(30 * time.Second); err != nil {
		tl.fail(fmt.Errorf("ingress after SIGTERM: %w, want a clean exit", err))
		_ = ing.kill()
	} else {
		tl.add("ingress exited cleanly")
	}

	at(0.65)
	p, err := h.start("ingress", "ingress", env)
	if err != nil {
		tl.fail(err)
		return
	}
	procs["ingress"] = p
	tl.add("ingress started again")
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	addr, err := h.adminAddr("ingress")
	if err != nil {
		tl.fail(err)
		return
	}
	if err := waitFor(30*time.Second, 50*time.Millisecond, func() error {
		if p.exited() {
			return errStop{fmt.Errorf("ingress exited: %v", p.waitErr)}
		}
		return httpGetOK(client, "http://"+addr+"/readyz")
	}); err != nil {
		tl.fail(fmt.Errorf("ingress not ready after restart: %w", err))
		return
	}
	tl.add("ingress ready again")
}

// serviceNames are the service processes, in start order.
var serviceNames = []string{"audit", "scoring-1", "scoring-2", "offers", "ingress"}

// binaryOf is the binary a service process runs: scoring-1 runs scoring.
func binaryOf(name string) string {
	bin, _, _ := strings.Cut(name, "-")
	return bin
}

// maxStartupRestarts bounds how often a service that exits during start-up is started again.
const maxStartupRestarts = 3

// waitReady waits until every service answers /readyz on its admin listener and every durable consumer is being pulled
// from. A service that exits meanwhile is started again, as its supervisor would, up to
// maxStartupRestarts times: the restarts are returned, with the error each exit logged, for
// the report.
func waitReady(h *harness, js jetstream.JetStream, env []string, httpAddr string, procs map[string]*proc, timeout time.Duration) ([]string, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	count := map[string]int{}
	var restarts []string
	err := waitFor(timeout, 100*time.Millisecond, func() error {
		for _, name := range serviceNames {
			p := procs[name]
			if !p.exited() {
				continue
			}
			p.expected.Store(true) // dealt with here
			if count[name] == maxStartupRestarts {
				return errStop{fmt.Errorf("%s exited at start %d times, last: %v\n%s", name, count[name]+1, p.waitErr, tail(p.logPath, 10, 4<<10))}
			}
			count[name]++
			restarts = append(restarts, fmt.Sprintf("%s exited during start-up (%v: %s); started again",
				name, p.waitErr, lastErrorLine(p.logPath)))
			np, err := h.start(name, binaryOf(name), env)
			if err != nil {
				return errStop{err}
			}
			procs[name] = np
		}
		for _, name := range serviceNames {
			addr, err := h.adminAddr(name)
			if err != nil {
				return errStop{err}
			}
			if err := httpGetOK(client, "http://"+addr+"/readyz"); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		for _, name := range consumerNames {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := js.Consumer(ctx, streamLoans, name)
			var ci *jetstream.ConsumerInfo
			if err == nil {
				ci, err = c.Info(ctx)
			}
			cancel()
			if err != nil {
				return fmt.Errorf("consumer %s: %w", name, err)
			}
			if ci.NumWaiting == 0 {
				return fmt.Errorf("consumer %s: nobody pulls from it yet", name)
			}
		}
		return nil
	})
	return restarts, err
}

// lastErrorLine returns the last line of a log that holds "error" (the services log JSON).
func lastErrorLine(path string) string {
	lines := strings.Split(tail(path, 50, 16<<10), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(strings.ToLower(lines[i]), "error") {
			return strings.TrimSpace(lines[i])
		}
	}
	return "no error logged"
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
