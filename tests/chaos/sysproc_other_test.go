//go:build !linux

package chaos_test

import "syscall"

// childAttr has nothing to add outside Linux: the test's cleanups kill every child.
func childAttr() *syscall.SysProcAttr { return nil }
