package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/contracts/topology"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// auditRecord is what this test reads of an audit record.
type auditRecord struct {
	EventType string          `json:"event_type"`
	SearchID  string          `json:"search_id"`
	Payload   json.RawMessage `json:"payload"`
}

// audited returns the audit records of one application, in order.
func (s *system) audited(searchID string) []auditRecord {
	s.t.Helper()
	var out []auditRecord
	for _, m := range s.streamMessages(topology.StreamAudit) {
		if m.Subject != topology.AuditSubject(searchID) {
			continue
		}
		var r auditRecord
		if err := json.Unmarshal(m.Data, &r); err != nil {
			s.t.Fatalf("audit record: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// TestDecisionsByClientAndAClickInTheAudit: a known client is fully approved, an unknown one
// pre-approved, a stop-listed one rejected, each with the reason codes in the audit and never
// in the answer; following a proposal link redirects to the bank's form and is audited.
func TestDecisionsByClientAndAClickInTheAudit(t *testing.T) {
	s := start(t, options{budget: 2 * time.Second})
	for _, tt := range []struct {
		searchID, phone string
		decision        partnerapi.Decision
		approval        partnerapi.OfferDecision
		reason          string
	}{
		{"e2e-click-known", knownA, partnerapi.DecisionHasApprove, partnerapi.OfferFullApproved, "KNOWN_CLIENT"},
		{"e2e-click-unknown", unknown, partnerapi.DecisionHasApprove, partnerapi.OfferPreApproved, "UNKNOWN_CLIENT"},
		{"e2e-click-stop", stopListed, partnerapi.DecisionRejected, "", "STOP_LIST"},
	} {
		a := s.post(loan(tt.searchID, tt.phone, 200000, 24))
		if a.status != http.StatusOK || a.body["status"] != "done" || a.body["decision"] != string(tt.decision) {
			t.Fatalf("%s: %d %s", tt.searchID, a.status, a.raw)
		}
		for _, o := range offers(t, a) {
			if o.Decision != tt.approval {
				t.Errorf("%s: offer %s, want %s", tt.searchID, o.Decision, tt.approval)
			}
		}
		noCodes(t, tt.searchID, a.raw)
		natstest.WaitFor(t, tt.searchID+" audited", func() bool { return len(s.audited(tt.searchID)) >= 3 })
		var scored events.ApplicationScored
		for _, r := range s.audited(tt.searchID) {
			if r.EventType == events.TypeApplicationScored {
				if err := json.Unmarshal(r.Payload, &scored); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !contains(scored.ReasonCodes, tt.reason) || scored.PolicyVersion == "" {
			t.Errorf("%s: audited scoring %+v, want reason %s and a policy version", tt.searchID, scored, tt.reason)
		}
	}

	// Follow the known client's first offer as a browser would, without going on to the form.
	a := s.until("e2e-click-known")
	public := offers(t, a)[0].ProposalLink.Link
	path, ok := strings.CutPrefix(public, publicURL+"/offers/")
	if !ok {
		t.Fatalf("proposal link %q does not go through ingress's public address", public)
	}
	link := s.base + "/offers/" + path
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound ||
		!strings.HasPrefix(loc, "https://loanflow.example/apply?search_id=e2e-click-known&offer=") {
		t.Fatalf("following the link: %d to %q, want 302 to the application form", resp.StatusCode, loc)
	}
	natstest.WaitFor(t, "click audited", func() bool {
		for _, r := range s.audited("e2e-click-known") {
			if r.EventType == events.TypeOfferClicked {
				return true
			}
		}
		return false
	})

	// A tampered link gets the 400 page and is not audited.
	resp, err = client.Get(link[:len(link)-3] + "AAA")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("tampered link: %d, want 400", resp.StatusCode)
	}
	if n := s.eventCounts("e2e-click-known")[events.TypeOfferClicked]; n != 1 {
		t.Errorf("%d click events, want 1", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
