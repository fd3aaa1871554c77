package scoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/services/scoring"
)

// policyFile is a policy file in a test's directory, written from the default policy.
type policyFile struct {
	t    *testing.T
	path string
	def  string
}

func newPolicyFile(t *testing.T) *policyFile {
	t.Helper()
	def, err := os.ReadFile("internal/policy/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return &policyFile{t: t, path: filepath.Join(t.TempDir(), "policy.yaml"), def: string(def)}
}

// write writes the default policy under version, with each old→new pair of edits applied.
func (p *policyFile) write(version string, edits ...string) {
	p.t.Helper()
	b := p.replace(p.def, `version: "2026-12.1"`, `version: "`+version+`"`)
	for i := 0; i+1 < len(edits); i += 2 {
		b = p.replace(b, edits[i], edits[i+1])
	}
	if err := os.WriteFile(p.path, []byte(b), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

func (p *policyFile) replace(s, old, new string) string {
	p.t.Helper()
	if !strings.Contains(s, old) {
		p.t.Fatalf("the default policy has no %q to edit", old)
	}
	return strings.Replace(s, old, new, 1)
}

// logBuffer collects a service's text log for a test to look into while it runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// count is how many lines of the log contain every one of parts.
func (l *logBuffer) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// scoredVersions reads every scored event of the stream until want distinct applications have
// been seen, then a little longer to catch repeats. It returns the policy version each search
// id was scored with and how many scored events each one has.
func scoredVersions(t *testing.T, js jetstream.JetStream, want int) (map[string]string, map[string]int) {
	t.Helper()
	cons, err := js.OrderedConsumer(context.Background(), topology.StreamLoans, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TypeApplicationScored}})
	if err != nil {
		t.Fatal(err)
	}
	versions, counts := map[string]string{}, map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	var settle time.Time
	for {
		if len(versions) >= want && settle.IsZero() {
			// Any repeat of an event already scored would be published by now.
			settle = time.Now().Add(time.Second)
		}
		if !settle.IsZero() && time.Now().After(settle) || time.Now().After(deadline) {
			return versions, counts
		}
		m, err := cons.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		if err != nil {
			continue
		}
		var ev events.ApplicationScored
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		versions[ev.SearchID] = ev.PolicyVersion
		counts[ev.SearchID]++
	}
}

// TestPolicyReloadsOnARealSIGHUPDuringABurst reloads the policy with a real SIGHUP sent to the
// process while a burst of applications is being scored: each one is scored exactly once, and
// in the order they arrived the versions go from the old policy to the new one and never back.
func TestPolicyReloadsOnARealSIGHUPDuringABurst(t *testing.T) {
	const burst = 200
	pf := newPolicyFile(t)
	pf.write("burst-old")
	var logs logBuffer
	js := startScoringWith(t, func(c *scoring.Config) {
		c.PolicyFile, c.Logger = pf.path, logs.logger()
		// One event at a time, so that arrival order is scoring order and "never back" is
		// exact: with several workers an event decided just before the swap may be published
		// just after one decided after it.
		c.Bus.Concurrency = 1
	})
	id := func(i int) string { return fmt.Sprintf("burst-%03d", i) }
	for i := range burst / 2 {
		received(t, js, id(i), "9001234567", partnerapi.ProductLoan, 100_000_00, 12)
	}
	// A scored event means Run is consuming, so SIGHUP is registered: it cannot end the test.
	var first events.ApplicationScored
	next(t, js, events.TypeApplicationScored, id(0), &first)
	if first.PolicyVersion != "burst-old" {
		t.Fatalf("first application scored with %q, want burst-old", first.PolicyVersion)
	}
	pf.write("burst-new")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The second half arrives while the first is still being worked through; it waits for
	// the reload only so that the new version is sure to show.
	natstest.WaitFor(t, "the policy reload", func() bool { return logs.count(`msg="policy reloaded"`, "burst-new") == 1 })
	for i := burst / 2; i < burst; i++ {
		received(t, js, id(i), "9001234567", partnerapi.ProductLoan, 100_000_00, 12)
	}

	versions, counts := scoredVersions(t, js, burst)
	if len(versions) != burst {
		t.Fatalf("%d of %d applications scored", len(versions), burst)
	}
	switched := -1
	for i := range burst {
		v := versions[id(i)]
		if n := counts[id(i)]; n != 1 {
			t.Errorf("%s scored %d times", id(i), n)
		}
		switch {
		case v == "burst-new" && switched < 0:
			switched = i
		case v == "burst-old" && switched >= 0:
			t.Errorf("%s scored with burst-old after %s was scored with burst-new", id(i), id(switched))
		case v != "burst-old" && v != "burst-new":
			t.Errorf("%s scored with %q", id(i), v)
		}
	}
	if switched < 1 || switched > burst/2 {
		t.Errorf("the new policy took over at application %d, want within the first half", switched)
	}
	t.Logf("the new policy took over at application %d of %d", switched, burst)
}

// TestSIGHUPDuringStartUpIsAReload sends SIGHUP while scoring is still connecting to NATS,
// after it read its policy: the process survives it and the reload happens once scoring runs.
func TestSIGHUPDuringStartUpIsAReload(t *testing.T) {
	srv := natstest.Start(t)
	pf := newPolicyFile(t)
	pf.write("startup-old")
	cfg := config(srv.ClientURL())
	cfg.PolicyFile = pf.path
	var once sync.Once
	cfg.NATSOptions = []nats.Option{nats.SetCustomDialer(dialFunc(func(network, address string) (net.Conn, error) {
		once.Do(func() {
			pf.write("startup-new")
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Error(err)
			}
		})
		return net.DialTimeout(network, address, 2*time.Second)
	}))}
	js := runScoring(t, srv.ClientURL(), cfg)

	var seen []string
	for i := 0; ; i++ {
		searchID := fmt.Sprintf("startup-%d", i)
		received(t, js, searchID, "9001234567", partnerapi.ProductLoan, 100_000_00, 12)
		var got events.ApplicationScored
		next(t, js, events.TypeApplicationScored, searchID, &got)
		seen = append(seen, got.PolicyVersion)
		if got.PolicyVersion == "startup-new" {
			break
		}
		if got.PolicyVersion != "startup-old" || i == 50 {
			t.Fatalf("versions seen %v, want startup-old until startup-new", seen)
		}
	}
}

// dialFunc is a nats.CustomDialer made of a function.
type dialFunc func(network, address string) (net.Conn, error)

func (f dialFunc) Dial(network, address string) (net.Conn, error) { return f(network, address) }

// reloadCount reads loanflow_scoring_policy_reloads_total for result from ops.
func reloadCount(t *testing.T, ops *admin.Ops, result string) float64 {
	t.Helper()
	families, err := ops.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "loanflow_scoring_policy_reloads_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestReloadRefusesAVersionWithOtherContent changes the policy's numbers without changing its
// version: the reload is refused, logged as an error and counted, and decisions stay those of
// the version as it was first run. A new version with the same numbers is taken.
func TestReloadRefusesAVersionWithOtherContent(t *testing.T) {
	pf := newPolicyFile(t)
	pf.write("same-1")
	// Unbuffered: a send returns once the reload loop has taken it.
	reload := make(chan os.Signal)
	ops := admin.NewOps()
	var logs logBuffer
	js := startScoringWith(t, func(c *scoring.Config) {
		c.PolicyFile, c.Reload, c.Ops, c.Logger = pf.path, reload, ops, logs.logger()
	})
	// An unknown client is pre-approved up to loan.unknown_client.max_amount.
	const lowered = "    max_amount: 250000"
	edit := []string{"    max_amount: 300000", lowered}
	i := 0
	decide := func() events.ApplicationScored {
		t.Helper()
		i++
		searchID := fmt.Sprintf("same-%d", i)
		received(t, js, searchID, "9001234567", partnerapi.ProductLoan, 400_000_00, 12)
		var got events.ApplicationScored
		next(t, js, events.TypeApplicationScored, searchID, &got)
		return got
	}
	reloadAndWait := func(result string, want float64) {
		t.Helper()
		reload <- syscall.SIGHUP
		natstest.WaitFor(t, fmt.Sprintf("%s reload number %v", result, want), func() bool { return reloadCount(t, ops, result) == want })
	}
	check := func(what string, got events.ApplicationScored, version string, maxAmount partnerapi.Money) {
		t.Helper()
		if got.PolicyVersion != version || got.MaxAmount != maxAmount {
			t.Errorf("%s: scored with %q up to %v, want %q up to %v", what, got.PolicyVersion, got.MaxAmount, version, maxAmount)
		}
	}
	check("at start", decide(), "same-1", 300_000_00)

	pf.write("same-1", edit...)
	reloadAndWait("refused", 1)
	if n := logs.count("level=ERROR", "policy reload refused", `file_version=same-1`); n != 1 {
		t.Errorf("%d error lines for the refused reload, want 1; log:\n%s", n, logs.String())
	}
	check("after the refused reload", decide(), "same-1", 300_000_00)

	// The same bytes again are no change, and no error.
	pf.write("same-1")
	reloadAndWait("unchanged", 1)

	// The lowered limit under a new version is taken: the edit does change decisions.
	pf.write("same-2", edit...)
	reloadAndWait("reloaded", 1)
	check("under a new version", decide(), "same-2", 250_000_00)

	// Back to same-1 with the lowered limit: still not what same-1 was, still refused.
	pf.write("same-1", edit...)
	reloadAndWait("refused", 2)
	check("after going back to same-1 with other content", decide(), "same-2", 250_000_00)
	// Back to same-1 as it was is a reload to it.
	pf.write("same-1")
	reloadAndWait("reloaded", 2)
	check("back to same-1 as it was", decide(), "same-1", 300_000_00)
	if n := reloadCount(t, ops, "invalid"); n != 0 {
		t.Errorf("%v invalid reloads, want 0", n)
	}
}
