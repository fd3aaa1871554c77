package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// testYAML is a valid policy with the default numbers, one setting per line so that tests can
// name the line an error must point at.
const testYAML = `version: "t-1"
loan:
  amount: {min: 30000, max: 5000000}
  term: {min: 3, max: 84}
  max_dti: 0.5
  salary_client_dti_bonus: 0.1
  unknown_client: {max_amount: 300000}
  grades:
    A: {max_amount: 5000000, rate: 14.9}
    B: {max_amount: 3000000, rate: 19.9}
    C: {max_amount: 1000000, rate: 27.9}
credit_card:
  limit: {min: 10000, max: 1000000}
  max_dti: 0.5
  salary_client_dti_bonus: 0.1
  min_payment_share: 0.05
  unknown_client: {max_limit: 50000}
  grades:
    A: {max_limit: 1000000}
    B: {max_limit: 500000}
    C: {max_limit: 150000}
underwriting:
  deadline_share: 0.75
  fallback: pre_approve
  loan: {amount_above: 3000000}
`

// edit returns testYAML with the given 1-based lines replaced; "#" blanks a line and keeps the
// numbering of the others.
func edit(t testing.TB, lines map[int]string) string {
	t.Helper()
	all := strings.Split(testYAML, "\n")
	for n, text := range lines {
		if n < 1 || n > len(all) {
			t.Fatalf("edit: no line %d", n)
		}
		all[n-1] = text
	}
	return strings.Join(all, "\n")
}

// mustParse parses a policy the test relies on being valid.
func mustParse(t testing.TB, data string) *Policy {
	t.Helper()
	p, err := Parse("policy.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestDefaultHasTheDocumentedNumbers(t *testing.T) {
	got, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	want := &Policy{
		version: "2026-12.1",
		loan: loanRules{
			limits: limits{
				min: 30_000_00, max: 5_000_000_00, maxDTI: 5000, salaryDTI: 1000, unknownMax: 300_000_00,
				grades: map[string]grade{
					"A": {max: 5_000_000_00, rate: 14.9},
					"B": {max: 3_000_000_00, rate: 19.9},
					"C": {max: 1_000_000_00, rate: 27.9},
				},
			},
			termMin: 3, termMax: 84,
		},
		card: cardRules{
			limits: limits{
				min: 10_000_00, max: 1_000_000_00, maxDTI: 5000, salaryDTI: 1000, unknownMax: 50_000_00,
				grades: map[string]grade{"A": {max: 1_000_000_00}, "B": {max: 500_000_00}, "C": {max: 150_000_00}},
			},
			minPayment: 500,
		},
		underwriting: &underwriting{deadlineShare: 7500, fallback: FallbackPreApprove, loan: &referRule{amountAbove: 3_000_000_00}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
	if got.Version() != "2026-12.1" {
		t.Errorf("Version() = %q", got.Version())
	}
	// The test policy mirrors the default's numbers, so decisions tested with it hold for both.
	test := mustParse(t, testYAML)
	test.version = got.version
	if !reflect.DeepEqual(test, got) {
		t.Errorf("testYAML drifted from default.yaml:\n%+v\n%+v", test, got)
	}
}

func TestParseAcceptsYAMLForms(t *testing.T) {
	tests := []struct {
		name  string
		lines map[int]string
		check func(*Policy) bool
	}{
		{"kopecks and digit separators", map[int]string{3: "  amount: {min: 30_000.50, max: 5e6}"},
			func(p *Policy) bool { return p.loan.min == 30_000_50 && p.loan.max == 5_000_000_00 }},
		{"four decimal shares", map[int]string{16: "  min_payment_share: 0.0375"},
			func(p *Policy) bool { return p.card.minPayment == 375 }},
		{"no salary bonus", map[int]string{6: "  salary_client_dti_bonus: 0"},
			func(p *Policy) bool { return p.loan.salaryDTI == 0 }},
		{"no grades at all", map[int]string{8: "  grades: {}", 9: "#", 10: "#", 11: "#"},
			func(p *Policy) bool { return len(p.loan.grades) == 0 }},
		{"anchors and aliases", map[int]string{5: "  max_dti: &dti 0.4", 14: "  max_dti: *dti"},
			func(p *Policy) bool { return p.loan.maxDTI == 4000 && p.card.maxDTI == 4000 }},
		{"unquoted version", map[int]string{1: "version: 2026.10"},
			func(p *Policy) bool { return p.Version() == "2026.10" }},
		{"no underwriting", map[int]string{22: "#", 23: "#", 24: "#", 25: "#"},
			func(p *Policy) bool { return p.underwriting == nil }},
		{"card referrals by grade", map[int]string{25: "  credit_card: {limit_above: 500000, grades: [B, C]}"},
			func(p *Policy) bool {
				return p.underwriting.loan == nil && p.underwriting.card.amountAbove == 500_000_00 && len(p.underwriting.card.grades) == 2
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, edit(t, tt.lines))
			if !tt.check(p) {
				t.Errorf("unexpected policy %+v", p)
			}
		})
	}
}

func TestParseErrorsNameFileLineAndRule(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // each must appear in the error, one per line
	}{
		{"empty file", "", []string{"policy.yaml:1: the policy is empty"}},
		{"bad YAML", edit(t, map[int]string{5: "\tmax_dti: 0.5"}),
			[]string{"policy.yaml:5: invalid YAML: found character that cannot start any token"}},
		{"bad YAML on the first line", "version: a: b\n", []string{"policy.yaml:1: invalid YAML: mapping values are not allowed"}},
		{"two documents", testYAML + "---\nversion: x\n", []string{"policy.yaml:26: a policy file holds one YAML document"}},
		{"not a mapping", "- 1\n- 2\n", []string{"policy.yaml:1: the policy must be a mapping"}},
		{"unknown top key", testYAML + "extra: 1\n", []string{"policy.yaml:26: unknown key extra (allowed: version, loan, credit_card, underwriting)"}},
		{"unknown nested key", edit(t, map[int]string{5: "  max_dtii: 0.5"}),
			[]string{"policy.yaml:5: unknown key loan.max_dtii", "policy.yaml:2: loan.max_dti is required"}},
		{"unknown key in a flow mapping", edit(t, map[int]string{4: "  term: {min: 3, max: 84, step: 1}"}),
			[]string{"policy.yaml:4: unknown key loan.term.step (allowed: min, max)"}},
		{"duplicate key", edit(t, map[int]string{6: "  max_dti: 0.4"}),
			[]string{"policy.yaml:6: loan.max_dti appears twice (first on line 5)"}},
		{"missing version", edit(t, map[int]string{1: "#"}), []string{"policy.yaml:2: version is required"}},
		{"empty version", edit(t, map[int]string{1: `version: ""`}), []string{"policy.yaml:1: version must not be empty"}},
		{"null version", edit(t, map[int]string{1: "version: ~"}), []string{"policy.yaml:1: version must be a string"}},
		{"missing section", testYAML[:strings.Index(testYAML, "credit_card:")],
			[]string{"policy.yaml:1: credit_card is required"}},
		{"section not a mapping", edit(t, map[int]string{4: "  term: 12"}), []string{"policy.yaml:4: loan.term must be a mapping"}},
		{"min above max", edit(t, map[int]string{3: "  amount: {min: 50000, max: 40000}"}),
			[]string{"policy.yaml:3: loan.amount.max must not be below loan.amount.min"}},
		{"card min above max", edit(t, map[int]string{13: "  limit: {min: 20000, max: 10000}"}),
			[]string{"policy.yaml:13: credit_card.limit.max must not be below credit_card.limit.min"}},
		{"zero min amount", edit(t, map[int]string{3: "  amount: {min: 0, max: 40000}"}),
			[]string{"policy.yaml:3: loan.amount.min must be greater than 0"}},
		{"term min above max", edit(t, map[int]string{4: "  term: {min: 24, max: 12}"}),
			[]string{"policy.yaml:4: loan.term.max must not be below loan.term.min"}},
		{"term zero", edit(t, map[int]string{4: "  term: {min: 0, max: 12}"}),
			[]string{"policy.yaml:4: loan.term.min must be at least 1 month"}},
		{"term not whole", edit(t, map[int]string{4: "  term: {min: 1.5, max: 12}"}),
			[]string{"policy.yaml:4: loan.term.min must be a whole number"}},
		{"dti above 1", edit(t, map[int]string{5: "  max_dti: 1.5"}),
			[]string{"policy.yaml:5: loan.max_dti must be greater than 0 and at most 1"}},
		{"dti zero", edit(t, map[int]string{14: "  max_dti: 0"}),
			[]string{"policy.yaml:14: credit_card.max_dti must be greater than 0 and at most 1"}},
		{"dti negative bonus", edit(t, map[int]string{6: "  salary_client_dti_bonus: -0.1"}),
			[]string{"policy.yaml:6: loan.salary_client_dti_bonus must be between 0 and 1"}},
		{"dti and bonus above 1", edit(t, map[int]string{6: "  salary_client_dti_bonus: 0.6"}),
			[]string{"policy.yaml:6: loan.salary_client_dti_bonus plus loan.max_dti must not exceed 1"}},
		{"dti too precise", edit(t, map[int]string{5: "  max_dti: 0.33333"}),
			[]string{"policy.yaml:5: loan.max_dti must have at most 4 decimals"}},
		{"dti a string", edit(t, map[int]string{5: `  max_dti: "0.5"`}),
			[]string{"policy.yaml:5: loan.max_dti must be a number"}},
		{"min payment share zero", edit(t, map[int]string{16: "  min_payment_share: 0"}),
			[]string{"policy.yaml:16: credit_card.min_payment_share must be greater than 0 and at most 1"}},
		{"amount with three decimals", edit(t, map[int]string{3: "  amount: {min: 30000.005, max: 5000000}"}),
			[]string{"policy.yaml:3: loan.amount.min must be a number of roubles with at most 2 decimals"}},
		{"amount as a string", edit(t, map[int]string{7: `  unknown_client: {max_amount: "300000"}`}),
			[]string{"policy.yaml:7: loan.unknown_client.max_amount must be a number of roubles"}},
		{"unknown-client limit above max", edit(t, map[int]string{17: "  unknown_client: {max_limit: 2000000}"}),
			[]string{"policy.yaml:17: credit_card.unknown_client.max_limit must be between the product's min 10000.00 and max 1000000.00"}},
		{"grade limit above max", edit(t, map[int]string{9: "    A: {max_amount: 6000000, rate: 14.9}"}),
			[]string{"policy.yaml:9: loan.grades.A.max_amount must be between the product's min 30000.00 and max 5000000.00"}},
		{"grade limit below min", edit(t, map[int]string{21: "    C: {max_limit: 5000}"}),
			[]string{"policy.yaml:21: credit_card.grades.C.max_limit must be between"}},
		{"grade without rate", edit(t, map[int]string{10: "    B: {max_amount: 3000000}"}),
			[]string{"policy.yaml:10: loan.grades.B.rate is required"}},
		{"negative rate", edit(t, map[int]string{10: "    B: {max_amount: 3000000, rate: -1}"}),
			[]string{"policy.yaml:10: loan.grades.B.rate must be between 0 and 100"}},
		{"not a bureau grade", edit(t, map[int]string{11: "    E: {max_amount: 1000000, rate: 27.9}"}),
			[]string{"policy.yaml:11: loan.grades.E is not a bureau grade"}},
		{"card grade with a rate", edit(t, map[int]string{19: "    A: {max_limit: 1000000, rate: 20}"}),
			[]string{"policy.yaml:19: unknown key credit_card.grades.A.rate (allowed: max_limit)"}},
		{"underwriting share zero", edit(t, map[int]string{23: "  deadline_share: 0"}),
			[]string{"policy.yaml:23: underwriting.deadline_share must be greater than 0 and at most 1"}},
		{"underwriting unknown fallback", edit(t, map[int]string{24: "  fallback: approve"}),
			[]string{"policy.yaml:24: underwriting.fallback must be reject or pre_approve"}},
		{"underwriting threshold above max", edit(t, map[int]string{25: "  loan: {amount_above: 9000000}"}),
			[]string{"policy.yaml:25: underwriting.loan.amount_above must be between the product's min 30000.00 and max 5000000.00"}},
		{"underwriting grade the policy rejects", edit(t, map[int]string{25: "  loan: {amount_above: 3000000, grades: [C, D]}"}),
			[]string{"policy.yaml:25: underwriting.loan.grades lists D, a grade the policy does not lend to"}},
		{"underwriting not a grade", edit(t, map[int]string{25: "  loan: {amount_above: 3000000, grades: [X]}"}),
			[]string{"policy.yaml:25: underwriting.loan.grades must list bureau grades A, B, C or D"}},
		{"underwriting refers nothing", edit(t, map[int]string{25: "#"}),
			[]string{"policy.yaml:22: underwriting refers nothing"}},
		{"underwriting card rule key", edit(t, map[int]string{25: "  credit_card: {amount_above: 100000}"}),
			[]string{"policy.yaml:25: unknown key underwriting.credit_card.amount_above (allowed: limit_above, grades)"}},
		{"every error at once", edit(t, map[int]string{5: "  max_dti: 2", 16: "  min_payment_share: 0"}),
			[]string{"policy.yaml:5: loan.max_dti", "policy.yaml:16: credit_card.min_payment_share"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want errors %q", p, tt.want)
			}
			for _, want := range tt.want {
				if !hasLine(err.Error(), want) {
					t.Errorf("error\n%v\nhas no line starting with %q", err, want)
				}
			}
		})
	}
}

func TestParseReportsEachProblemOnce(t *testing.T) {
	// A broken range must not also fail every grade and unknown-client limit checked against it.
	tests := []struct {
		name string
		data string
		want string
	}{
		{"min above max", edit(t, map[int]string{3: "  amount: {min: 50000, max: 40000}"}),
			"policy.yaml:3: loan.amount.max must not be below loan.amount.min"},
		{"missing max", edit(t, map[int]string{13: "  limit: {min: 10000}"}),
			"policy.yaml:13: credit_card.limit.max is required"},
		{"two problems", edit(t, map[int]string{5: "  max_dti: 2", 16: "  min_payment_share: 0"}),
			"policy.yaml:5: loan.max_dti must be greater than 0 and at most 1\n" +
				"policy.yaml:16: credit_card.min_payment_share must be greater than 0 and at most 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.data))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want exactly\n%s", err, tt.want)
			}
		})
	}
}

// hasLine reports whether one line of msg starts with prefix.
func hasLine(msg, prefix string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(good, []byte(testYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := p.Version(), "t-1"; got != want {
		t.Errorf("Version() = %q, want %q", got, want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(edit(t, map[int]string{5: "  max_dti: 1.5"})), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if want := bad + ":5: loan.max_dti must be greater than 0 and at most 1"; err == nil || err.Error() != want {
		t.Errorf("Load(bad) error = %v, want %q", err, want)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
}

// money is a test shorthand for an amount of kopecks.
func money(k int64) *partnerapi.Money { m := partnerapi.Money(k); return &m }
