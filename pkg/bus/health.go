package bus

import (
	"errors"
	"slices"
	"sort"
	"sync"
)

// Health records, per subscription, whether it is consuming; readiness reports it.
type Health struct {
	mu       sync.Mutex
	problems map[string]error
	// consumers are the subscriptions' durable consumers by stream, for readiness to ask
	// each of its CONSUMER.INFO.
	consumers map[string][]string
}

// track records that a subscription reads consumer on stream.
func (h *Health) track(stream, consumer string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.consumers == nil {
		h.consumers = map[string][]string{}
	}
	if !slices.Contains(h.consumers[stream], consumer) {
		h.consumers[stream] = append(h.consumers[stream], consumer)
	}
}

// consumersOn returns the consumers tracked on stream.
func (h *Health) consumersOn(stream string) []string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.consumers[stream])
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
