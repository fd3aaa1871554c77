// Package load is an open-loop load generator for the loan_approval endpoint: applications are
// sent at a constant arrival rate whatever the server does, and latency is measured from each
// request's intended send time, so that a stalled server cannot hide its queue. Every pending
// answer is followed by polls until done. It only ever talks to the URL it is given.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config drives one run.
type Config struct {
	// URL is the endpoint, e.g. http://127.0.0.1:8080/integrations/api/banking/loan_approval.
	URL   string
	Token string
	// Rate is the offered applications per second; Duration how long they are offered.
	Rate     float64
	Duration time.Duration
	// PollDeadline bounds the polls that follow a pending answer.
	PollDeadline time.Duration
	// Phones are cycled through; loans and cards alternate.
	Phones []string
	// MaxInFlight bounds concurrent requests (a safety net, not a pacing mechanism).
	MaxInFlight int
}

// Stats sums up a run.
type Stats struct {
	Offered, Sent        int64
	DoneFirst, Pending   int64
	Done, Failed, Errors int64
	// FirstAnswer and ToDone are latencies from the intended send time.
	FirstAnswer, ToDone []time.Duration
	Elapsed             time.Duration
	// Answered is when, from the start, the last first answer came: Sent/Answered is the rate
	// the server took applications at (Elapsed also counts the polls that followed).
	Answered time.Duration
	// ErrorSamples holds the first few errors, for the report.
	ErrorSamples []string

	start time.Time
}

// Percentile returns the p-th percentile (0..100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

type recorder struct {
	mu    sync.Mutex
	stats Stats
}

func (r *recorder) add(f func(*Stats)) { r.mu.Lock(); f(&r.stats); r.mu.Unlock() }

func (r *recorder) fail(err error) {
	r.add(func(s *Stats) {
		s.Errors++
		if len(s.ErrorSamples) < 10 {
			s.ErrorSamples = append(s.ErrorSamples, err.Error())
		}
	})
}

// Run offers cfg.Rate applications a second for cfg.Duration, then waits for the answers.
func Run(ctx context.Context, cfg Config) Stats {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
	}
	if cfg.PollDeadline <= 0 {
		cfg.PollDeadline = 2 * time.Minute
	}
	if len(cfg.Phones) == 0 {
		cfg.Phones = []string{"9001234567", "9330445040", "9161234567", "9037654321"}
	}
	// Idle connections are closed before a server's usual 2-minute idle timeout closes them
	// under a request (an EOF that is the client's race, not the server's fault).
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.MaxInFlight, MaxConnsPerHost: cfg.MaxInFlight, IdleConnTimeout: 90 * time.Second}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	rec := &recorder{}
	rec.stats.start = time.Now()
	sem := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	var n atomic.Int64
	start := rec.stats.start
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	total := int64(cfg.Duration.Seconds() * cfg.Rate)
	for i := int64(0); i < total && ctx.Err() == nil; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		rec.add(func(s *Stats) { s.Offered++ })
		select {
		case sem <- struct{}{}:
		default:
			rec.fail(fmt.Errorf("more than %d requests in flight: the server is not keeping up", cfg.MaxInFlight))
			continue
		}
		wg.Add(1)
		go func(i int64, intended time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			one(ctx, client, cfg, rec, n.Add(1), intended)
		}(i, intended)
	}
	wg.Wait()
	rec.stats.Elapsed = time.Since(start)
	return rec.stats
}

func one(ctx context.Context, client *http.Client, cfg Config, rec *recorder, i int64, intended time.Time) {
	id := randomID()
	body := map[string]any{"search_id": id, "phone_number": cfg.Phones[int(i)%len(cfg.Phones)]}
	if i%2 == 0 {
		body["product_type"], body["amount"], body["term"] = "loan", 100000+float64(i%40)*10000, 12+int(i%48)
	} else {
		body["product_type"] = "credit_card"
	}
	status, ans, err := post(ctx, client, cfg, body)
	rec.add(func(s *Stats) { s.Sent++ })
	if err != nil {
		rec.fail(err)
		return
	}
	first := time.Since(intended)
	rec.add(func(s *Stats) {
		s.FirstAnswer = append(s.FirstAnswer, first)
		s.Answered = max(s.Answered, intended.Add(first).Sub(s.start))
	})
	deadline := time.Now().Add(cfg.PollDeadline)
	wait := 100 * time.Millisecond
	for firstAnswer := true; ; firstAnswer = false {
		switch {
		case status == http.StatusOK && ans.Status == "done":
			took := time.Since(intended)
			rec.add(func(s *Stats) {
				s.Done++
				if firstAnswer {
					s.DoneFirst++
				}
				s.ToDone = append(s.ToDone, took)
			})
			return
		case status == http.StatusOK && ans.Status == "pending":
			if firstAnswer {
				rec.add(func(s *Stats) { s.Pending++ })
			}
		case status == http.StatusInternalServerError:
			rec.add(func(s *Stats) { s.Failed++ })
			return
		default:
			rec.fail(fmt.Errorf("%s: answer %d %s", id, status, ans.raw))
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			rec.fail(fmt.Errorf("%s: still pending after %v", id, cfg.PollDeadline))
			return
		}
		time.Sleep(wait)
		wait = min(wait*3/2, 2*time.Second)
		if status, ans, err = post(ctx, client, cfg, map[string]any{"search_id": id}); err != nil {
			rec.fail(err)
			return
		}
	}
}

type answer struct {
	Status string `json:"status"`
	raw    string
}

func post(ctx context.Context, client *http.Client, cfg Config, body map[string]any) (int, answer, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(b))
	if err != nil {
		return 0, answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, answer{}, err
	}
	var a answer
	_ = json.Unmarshal(raw, &a)
	a.raw = string(raw)
	return resp.StatusCode, a, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
