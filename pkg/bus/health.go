package bus

import (
	"errors"
	"sort"
	"sync"
)

// Health records, per subscription, whether it is consuming; readiness reports it.
type Health struct {
	mu       sync.Mutex
	problems map[string]error
}

func (h *Health) set(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.problems == nil {
		h.problems = map[string]error{}
	}
	if err == nil {
		delete(h.problems, name)
	} else {
		h.problems[name] = err
	}
}

// Err returns every current problem joined, or nil when all subscriptions consume.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.problems))
	for n := range h.problems {
		names = append(names, n)
	}
	sort.Strings(names)
	errs := make([]error, 0, len(names))
	for _, n := range names {
		errs = append(errs, h.problems[n])
	}
	return errors.Join(errs...)
}
