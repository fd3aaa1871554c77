package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTicks = 100

// process is a system under test started as a process of its own, so that its CPU and memory
// are apart from the load generator's.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan error
	// http, nats and admin are the addresses it logged at start ("" when it has none).
	http, nats, admin string
}

// buildBinaries builds the all-in-one and the baseline into dir with go build, from root.
func buildBinaries(ctx context.Context, root, dir string) (loanflow, baseline string, err error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	loanflow, baseline = filepath.Join(dir, "bin", "loanflow"), filepath.Join(dir, "bin", "baseline")
	// Each is built inside its own module, so that the build works with the workspace and
	// with GOWORK=off alike (make test runs every module with GOWORK=off; the root holds no go.mod).
	for _, b := range [][3]string{
		{loanflow, "deploy/allinone", "./cmd/loanflow"},
		{baseline, "bench", "./cmd/baseline"},
	} {
		cmd := exec.CommandContext(ctx, goCmd, "build", "-o", b[0], b[2])
		cmd.Dir = filepath.Join(root, b[1])
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s in %s: %w\n%s", b[2], b[1], err, out)
		}
	}
	return loanflow, baseline, nil
}

// findRoot walks up from dir to the directory holding go.work: the repository's root.
func findRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run from inside the repository")
		}
		dir = parent
	}
}

// startProcess runs bin with args and env (added to this process's environment), its stderr
// kept in logFile, and waits until it logs the JSON line whose msg is ready; the addresses
// it logged before that line are recorded.
func startProcess(ctx context.Context, bin string, args, env []string, logFile, ready string) (*process, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, pw
	if err := cmd.Start(); err != nil {
		f.Close()
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pw.Close()
	p := &process{cmd: cmd, log: f, done: make(chan error, 1)}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = f.Write(append(line, '\n'))
			if signalled {
				continue
			}
			var l struct {
				Msg   string `json:"msg"`
				HTTP  string `json:"http"`
				NATS  string `json:"nats"`
				Addr  string `json:"addr"`
				Level string `json:"level"`
			}
			if json.Unmarshal(line, &l) != nil {
				continue
			}
			switch l.Msg {
			case "admin listener":
				p.admin = l.Addr
			case ready:
				p.http, p.nats = l.HTTP, l.NATS
				signalled = true
				close(found)
			}
		}
		_, _ = io.Copy(f, pr)
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case <-found:
		return p, nil
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("%s exited while starting (%v): see %s", filepath.Base(bin), err, logFile)
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start: see %s", filepath.Base(bin), logFile)
}

// stop sends SIGTERM and waits for a clean exit, killing the process after 30 s.
func (p *process) stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		return fmt.Errorf("did not stop within 30s; killed")
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited returns a non-nil error once the process has ended.
func (p *process) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("%s exited (%v): see %s", filepath.Base(p.cmd.Path), err, p.log.Name())
	default:
		return nil
	}
}

// cpuSeconds returns the user and system CPU time the process has used.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	// Fields after the command: state is field 3, utime 14 and stime 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("stat: short")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// selfCPUSeconds returns this process's user and system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// memory returns the process's resident set size and its peak (VmHWM), in bytes.
func memory(pid int) (rss, hwm uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, k := range []struct {
			name string
			into *uint64
		}{{"VmRSS:", &rss}, {"VmHWM:", &hwm}} {
			if v, ok := strings.CutPrefix(line, k.name); ok {
				if f := strings.Fields(v); len(f) > 0 {
					kb, _ := strconv.ParseUint(f[0], 10, 64)
					*k.into = kb << 10
				}
			}
		}
	}
	return rss, hwm, nil
}

// resetPeak resets the process's VmHWM to its current RSS (Linux: "5" into clear_refs), so
// that a step's peak is its own; it reports whether it could.
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}
