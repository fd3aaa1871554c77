package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// harness owns every child process of one run: it starts them, kills whatever still runs when
// the test ends, and prints the end of their logs when the test failed.
type harness struct {
	t    *testing.T
	root string // the repository root: ../../ from this package
	dir  string // logs, configurations and JetStream stores
	bin  string // the built binaries

	mu    sync.Mutex
	procs []*proc
	logs  []string          // log files in the order they were first written
	admin map[string]string // each service process's admin listener, kept across restarts
}

// adminAddr is the admin listener (/readyz, /metrics) of the service process name: processes
// on one host each need their own.
func (h *harness) adminAddr(name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a, ok := h.admin[name]; ok {
		return a, nil
	}
	ports, err := freePorts(1)
	if err != nil {
		return "", err
	}
	if h.admin == nil {
		h.admin = map[string]string{}
	}
	h.admin[name] = "127.0.0.1:" + strconv.Itoa(ports[0])
	return h.admin[name], nil
}

// proc is one child process.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	// expected is set before the schedule signals the process on purpose, or once its exit
	// has been dealt with, so that the exit is not reported as a crash.
	expected atomic.Bool
}

// newHarness prepares a run: the cleanup that kills every child is registered here, after the
// directory exists, so that it runs before the directory is removed.
func newHarness(t *testing.T, root, dir, bin string) *harness {
	t.Helper()
	h := &harness{t: t, root: root, dir: dir, bin: bin}
	t.Cleanup(func() {
		h.killAll()
		if t.Failed() {
			h.dumpLogs()
		}
	})
	return h
}

// start runs the binary bin (a name in the binaries directory) with env, its output appended to
// DIR/logName.log (so that a restarted process continues the same file).
func (h *harness) start(logName, bin string, env []string, args ...string) (*proc, error) {
	path := filepath.Join(h.dir, logName+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== chaos test: starting %s %s at %s\n", bin, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(h.bin, bin), args...)
	cmd.Dir = h.root
	cmd.Env = env
	if bin != "nats-server" {
		addr, err := h.adminAddr(logName)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(slices.Clone(env), "LOANFLOW_ADMIN_ADDR="+addr)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", logName, err)
	}
	p := &proc{name: logName, logPath: path, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	if !slices.Contains(h.logs, path) {
		h.logs = append(h.logs, path)
	}
	h.mu.Unlock()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig on purpose (the exit is then not a crash).
func (p *proc) signal(sig os.Signal) error {
	p.expected.Store(true)
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		return fmt.Errorf("signal %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// wait waits up to timeout for the process to exit and returns its exit error.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running after %v", p.name, p.cmd.Process.Pid, timeout)
	}
}

// kill sends SIGKILL on purpose and waits for the process to be gone.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL for 10s", p.name, p.cmd.Process.Pid)
	}
}

// killAll kills every child still running, by its own pid, and waits for each.
func (h *harness) killAll() {
	h.mu.Lock()
	procs := append([]*proc(nil), h.procs...)
	h.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- { // services first, NATS last
		p := procs[i]
		if p.exited() {
			continue
		}
		if err := p.kill(); err != nil {
			h.t.Errorf("cleanup: %v", err)
		}
	}
}

// crashed returns the processes that exited when nobody expected them to.
func (h *harness) crashed() []*proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*proc
	for _, p := range h.procs {
		if p.exited() && !p.expected.Load() {
			out = append(out, p)
		}
	}
	return out
}

// dumpLogs prints the end of every log file.
func (h *harness) dumpLogs() {
	h.mu.Lock()
	logs := append([]string(nil), h.logs...)
	h.mu.Unlock()
	for _, path := range logs {
		h.t.Logf("---- %s (last lines) ----\n%s", filepath.Base(path), tail(path, 40, 8<<10))
	}
}

// tail returns at most the last n lines and max bytes of the file at path.
func tail(path string, n, maxBytes int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs a one-shot command of a built binary to completion (bounded by timeout) and returns
// its combined output.
func (h *harness) run(timeout time.Duration, bin string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, bin), args...)
	cmd.Dir = h.root
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %v", bin, strings.Join(args, " "), timeout)
	}
	return strings.TrimSpace(string(out)), err
}

// childEnv is the test's environment without any setting the services read (so that a
// developer's shell cannot change the run), plus set.
func childEnv(set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LOANFLOW_") || strings.HasPrefix(k, "NATS_") || k == "LOG_LEVEL" || k == "LOG_FORMAT" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, set...)
}

// buildBinaries builds nats-server at the version tests/go.mod pins, and the four services, into
// dir. go build relinks only what changed, so a warm cache makes this a few seconds.
func buildBinaries(t *testing.T, root, dir string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binaries: %v", err)
	}
	build := func(moduleDir string, gowork string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, gobin, append([]string{"build"}, args...)...)
		cmd.Dir = moduleDir
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOWORK=") {
				env = append(env, kv)
			}
		}
		if gowork != "" {
			env = append(env, "GOWORK="+gowork)
		}
		cmd.Env = env
		cmd.WaitDelay = 5 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s (in %s): %v\n%s", strings.Join(args, " "), moduleDir, err, out)
		}
	}
	// GOWORK=off: the tests module's own go.mod decides the server's version, not the workspace.
	build(filepath.Join(root, "tests"), "off", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2")
	// The services as make build builds them: from the repository root, in the workspace.
	build(root, "", "-o", dir+string(filepath.Separator),
		"./services/ingress/cmd/ingress", "./services/scoring/cmd/scoring", "./services/offers/cmd/offers", "./services/audit/cmd/audit")
}
