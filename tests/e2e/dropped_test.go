package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/deploy/allinone"
	"github.com/loanflow/loanflow/pkg/admin"
	"github.com/loanflow/loanflow/pkg/natstest"
)

// TestDroppedOfferIsCountedAndAudited: an offer the self-check refuses never reaches Yandex,
// is counted in loanflow_offers_dropped_total and lands in the audit with the check it failed.
// The catalog is the default one with the card ПСК cap lowered to 50%, below the default
// card's ПСК for an unknown client (up to about 72% with the 990 ₽ fee on a 10 000 ₽ limit).
func TestDroppedOfferIsCountedAndAudited(t *testing.T) {
	def, err := os.ReadFile("../../services/offers/internal/catalog/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	low := strings.Replace(string(def), "  credit_card: 80\n", "  credit_card: 50\n", 1)
	if low == string(def) {
		t.Fatal("the default catalog's card cap moved")
	}
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(file, []byte(low), 0o600); err != nil {
		t.Fatal(err)
	}
	ops := admin.NewOps()
	s := start(t, options{budget: 2 * time.Second, ops: ops, configure: func(c *allinone.Config) { c.Offers.CatalogFile = file }})

	a := s.post(card("e2e-dropped-card", unknown))
	if a.status != http.StatusOK || a.body["status"] != "done" || a.body["decision"] != "rejected" {
		t.Fatalf("answer %d %s, want done rejected: the only card fails the check", a.status, a.raw)
	}
	if strings.Contains(string(a.raw), "card-120") {
		t.Errorf("the answer to Yandex names the dropped offer: %s", a.raw)
	}
	noCodes(t, "e2e-dropped-card", a.raw)

	var made events.DecisionMade
	natstest.WaitFor(t, "decision audited", func() bool {
		for _, r := range s.audited("e2e-dropped-card") {
			if r.EventType == events.TypeDecisionMade {
				if err := json.Unmarshal(r.Payload, &made); err != nil {
					t.Fatal(err)
				}
				return true
			}
		}
		return false
	})
	if len(made.Dropped) != 1 || made.Dropped[0].OfferID != "card-120" || len(made.Dropped[0].Checks) != 1 || made.Dropped[0].Checks[0] != "psk_above_cap" {
		t.Errorf("audited dropped offers %+v, want card-120 failing psk_above_cap", made.Dropped)
	}
	if !contains(made.ReasonCodes, "OFFERS_FAILED_CHECK") || !contains(made.ReasonCodes, "UNKNOWN_CLIENT") {
		t.Errorf("audited reasons %v, want UNKNOWN_CLIENT and OFFERS_FAILED_CHECK", made.ReasonCodes)
	}

	const want = `
# HELP loanflow_offers_dropped_total Offers the self-check kept out of answers, by product type and failed check.
# TYPE loanflow_offers_dropped_total counter
loanflow_offers_dropped_total{check="psk_above_cap",product_type="credit_card"} 1
`
	if err := testutil.GatherAndCompare(ops.Registry, strings.NewReader(want), "loanflow_offers_dropped_total"); err != nil {
		t.Error(err)
	}
}

// codeRow is a row of docs/reason-codes.md's tables: the code in backticks, first column.
var codeRow = regexp.MustCompile("(?m)^\\|\\s*`([A-Za-z_]+)`\\s*\\|")

// documentedCodes are every reason and self-check code of docs/reason-codes.md, which
// tests/docs keeps equal to the sources' constants.
func documentedCodes(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/reason-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, m := range codeRow.FindAllStringSubmatch(string(b), -1) {
		codes = append(codes, m[1])
	}
	if len(codes) < 20 {
		t.Fatalf("%d codes in docs/reason-codes.md: the table did not parse", len(codes))
	}
	return codes
}

// noCodes fails when an answer body to Yandex carries any reason or self-check code: they
// are for the bank's records and the audit only.
func noCodes(t *testing.T, searchID string, body []byte) {
	t.Helper()
	for _, code := range documentedCodes(t) {
		if strings.Contains(string(body), code) {
			t.Errorf("%s: the answer to Yandex carries the code %s: %s", searchID, code, body)
		}
	}
}
