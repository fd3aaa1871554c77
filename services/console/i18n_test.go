package console

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/services/console/internal/underwriting"
)

func TestCatalogsHaveTheSameKeys(t *testing.T) {
	for _, a := range languages {
		for _, b := range languages {
			for k := range catalog[a] {
				if _, ok := catalog[b][k]; !ok {
					t.Errorf("%q is in the %s catalog, not in the %s one", k, a, b)
				}
			}
		}
		for k, m := range catalog[a] {
			if strings.TrimSpace(m) == "" {
				t.Errorf("%s %q is empty", a, k)
			}
		}
	}
	if len(catalog) != len(languages) {
		t.Errorf("catalogs %v, languages %v", slices.Sorted(maps.Keys(catalog)), languages)
	}
}

// tfValues are the values each prefix of the templates' Tf calls can be given: every one must
// have a message in both languages. A prefix the templates use that is not here fails the test,
// so that a new one is added with its values.
var tfValues = map[string][]string{
	"state.":    {string(underwriting.StateOpen), string(underwriting.StateTaken), string(underwriting.StateDecided)},
	"product.":  {string(partnerapi.ProductLoan), string(partnerapi.ProductCreditCard)},
	"outcome.":  {string(events.OutcomeApproved), string(events.OutcomeRejected)},
	"approval.": {string(partnerapi.OfferFullApproved), string(partnerapi.OfferPreApproved)},
	"decision.": {string(partnerapi.DecisionHasApprove), string(partnerapi.DecisionRejected)},
	"event.": {events.TypeApplicationReceived, events.TypeApplicationScored, events.TypeApplicationReferred,
		events.TypeUnderwritingTaken, events.TypeUnderwritingDecided, events.TypeDecisionMade,
		events.TypeApplicationFailed, events.TypeOfferClicked},
	"reason.": {underwriting.ReasonOfficerApproved, underwriting.ReasonOfficerRejected, underwriting.ReasonFallback,
		"REFER_LARGE_AMOUNT", "KNOWN_CLIENT"},
	"field.": append(slices.Clone(detailKeys), "offers"),
	"stage.": {"ingress", "scoring", "offers", "audit", "console"},
}

var (
	tKey       = regexp.MustCompile(`\.T "([^"]+)"`)
	tfPrefix   = regexp.MustCompile(`\.Tf "([^"]+)"`)
	tPrintf    = regexp.MustCompile(`\.T \(printf "([^"%]+)%s"`)
	goKey      = regexp.MustCompile(`"((?:app|nav|role|signin|queue|case|msg|err|search|timeline|dash|unit|offer)\.[a-z_]+)"`)
	rolePrefix = "role."
)

// TestTemplatesUseOnlyKnownKeys: every message key a template or the Go code names exists in
// both catalogs, so that no page shows a raw key in either language.
func TestTemplatesUseOnlyKnownKeys(t *testing.T) {
	need := map[string]string{} // key → where it is used
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, path)
		if err != nil {
			return err
		}
		src := string(b)
		for _, m := range tKey.FindAllStringSubmatch(src, -1) {
			need[m[1]] = path
		}
		for _, m := range tPrintf.FindAllStringSubmatch(src, -1) {
			if m[1] != rolePrefix {
				t.Errorf("%s: printf keys with prefix %q: add its values to the test", path, m[1])
			}
			for _, r := range []Role{RoleOfficer, RoleAuditor} {
				need[m[1]+string(r)] = path
			}
		}
		for _, m := range tfPrefix.FindAllStringSubmatch(src, -1) {
			values, ok := tfValues[m[1]]
			if !ok {
				t.Errorf("%s: Tf prefix %q has no values in tfValues", path, m[1])
			}
			for _, v := range values {
				need[m[1]+v] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(need) < 50 {
		t.Fatalf("found %d keys in the templates: the patterns no longer match them", len(need))
	}
	// The Go side: page titles, error and message keys, chart labels.
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			need[m[1]] = f
		}
	}
	// What actionError and the actions redirect with, as ?err= and ?msg=.
	for _, key := range []string{"taken", "decided", "not_taken", "expired", "approval", "amount", "comment_required", "comment_long", "comment_personal"} {
		need["err."+key] = "actionError"
	}
	for _, key := range []string{"taken", "taken_pending", "decided", "decided_pending"} {
		need["msg."+key] = "take, decide"
	}
	for _, key := range slices.Sorted(maps.Keys(need)) {
		for _, lang := range languages {
			if _, ok := catalog[lang][key]; !ok {
				t.Errorf("%s uses %q, missing from the %s catalog", need[key], key, lang)
			}
		}
	}
}
