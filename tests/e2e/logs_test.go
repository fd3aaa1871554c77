package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/natstest"
	"github.com/loanflow/loanflow/pkg/pseudonym"
)

// postAs sends body with the caller's X-Request-Id and returns the status and the answer's
// "status" field; ingress must echo the id.
func (s *system) postAs(requestID, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+apiPath, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get("X-Request-Id"); got != requestID {
		s.t.Errorf("X-Request-Id answered %q, want the caller's %q", got, requestID)
	}
	var a struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a.Status
}

// TestLogsCarryTheCorrelationIDNeverThePhone sends two applications with a caller's
// X-Request-Id through the all-in-one logging with pkg/logging's JSON handler at debug level:
// a referred one that the console's fallback decides, and one whose client profile the bank
// cannot read, which scoring gives up on. Every line is JSON; every line about either
// application (its search_id or its request id) carries that request id as correlation_id,
// the lines the stages log from the events included; no line holds a phone number.
func TestLogsCarryTheCorrelationIDNeverThePhone(t *testing.T) {
	logs := &syncBuffer{}
	s := start(t, options{budget: 100 * time.Millisecond, logs: logs, configure: func(c *allinone.Config) {
		c.Ingress.AnswerDeadline = 3 * time.Second
	}})
	// A client whose stored profile does not decode: the bank's data problem, fatal for the
	// application.
	const brokenPhone = "9051112233"
	hasher, err := pseudonym.New([]byte("e2e-phone-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := s.js().KeyValue(ctx, topology.BucketClients)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, hasher.Phone(brokenPhone), []byte(`{"monthly_income":"lots"}`)); err != nil {
		t.Fatal(err)
	}

	apps := []struct {
		searchID, requestID, body string
		wantStatus                int
		// wantLogs are messages that must be logged about the application, by service.
		wantLogs map[string]string
	}{
		{"e2e-log-referred-1", "req-e2e-log-referred-1", loan("e2e-log-referred-1", knownA, referredAmount, referredTerm), http.StatusOK,
			map[string]string{"console": "underwriting fallback applied"}},
		{"e2e-log-broken-1", "req-e2e-log-broken-1", loan("e2e-log-broken-1", brokenPhone, 100000, 12), http.StatusInternalServerError,
			map[string]string{"scoring": "event failed for good, application marked failed", "ingress": "answered failed application"}},
	}
	for _, a := range apps {
		// The broken one may fail within the sync budget already; the referred one waits.
		code, status := s.postAs(a.requestID, a.body)
		// Polls carry the same request id: each line of theirs is about the application too.
		deadline := time.Now().Add(20 * time.Second)
		for code == http.StatusOK && status == "pending" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			code, status = s.postAs(a.requestID, `{"search_id":"`+a.searchID+`"}`)
		}
		if code != a.wantStatus {
			t.Fatalf("%s: answered %d %q, want %d", a.searchID, code, status, a.wantStatus)
		}
	}

	type line struct {
		Msg           string `json:"msg"`
		Service       string `json:"service"`
		SearchID      string `json:"search_id"`
		CorrelationID string `json:"correlation_id"`
	}
	var lines []string
	natstest.WaitFor(t, "the logs every application must have", func() bool {
		lines = strings.Split(strings.TrimSpace(logs.String()), "\n")
		for _, a := range apps {
			for service, msg := range a.wantLogs {
				found := false
				for _, l := range lines {
					var e line
					if json.Unmarshal([]byte(l), &e) == nil && e.Service == service && e.Msg == msg && e.SearchID == a.searchID {
						found = true
					}
				}
				if !found {
					return false
				}
			}
		}
		return true
	})

	about := map[string]int{}
	for i, l := range lines {
		var e line
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Errorf("log line %d is not JSON: %v: %s", i, err, l)
			continue
		}
		for _, p := range []string{knownA, brokenPhone} {
			if strings.Contains(l, p) {
				t.Errorf("log line %d holds the clear phone %s: %s", i, p, l)
			}
		}
		for _, a := range apps {
			if e.SearchID != a.searchID && e.CorrelationID != a.requestID {
				continue
			}
			about[a.searchID]++
			if e.CorrelationID != a.requestID {
				t.Errorf("a line about %s has correlation_id %q, want %q: %s", a.searchID, e.CorrelationID, a.requestID, l)
			}
		}
	}
	for _, a := range apps {
		// The request's line, plus the lines wanted.
		if min := 1 + len(a.wantLogs); about[a.searchID] < min {
			t.Errorf("%d lines about %s, want at least %d", about[a.searchID], a.searchID, min)
		}
	}
}
