package ingress_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/topology"
)

// FuzzLoanApproval posts arbitrary bodies to a running ingress on a real embedded NATS server.
// Whatever the body: no 5xx, a strict-JSON answer, and nothing published unless the answer is
// 200 (invalid input is never published). The seed corpus is testdata/fuzz/FuzzLoanApproval.
func FuzzLoanApproval(f *testing.F) {
	e := start(f, 5*time.Millisecond)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := e.messages(t)
		r := e.post(t, token, string(body))
		switch r.status {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusNotFound:
			if after := e.messages(t); after != before {
				t.Fatalf("answer %d but %d events published: %s", r.status, after-before, r.raw)
			}
			if r.body["message"] == "" {
				t.Fatalf("answer %d without a message: %s", r.status, r.raw)
			}
		default:
			t.Fatalf("answer %d to %q: %s", r.status, body, r.raw)
		}
	})
}

// messages counts the events in LOANS.
func (e *env) messages(t testing.TB) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), topology.StreamLoans)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
