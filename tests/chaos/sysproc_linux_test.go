//go:build linux

package chaos_test

import "syscall"

// childAttr makes the kernel SIGKILL a child when the test process dies, even when it dies
// without running its cleanups (a panic, go test's -timeout): no NATS server outlives the test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
