package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a small catalog whose numbers can be checked by hand: a fee-free 12-month tier at
// 12% (the annuity of 100 000 ₽ is 8 884.88 ₽), a one-month tier with a fee (its ПСК is simple
// interest on the money actually received) and a fee-free card.
const fixture = `version: "test-1"
bank_name: "АО «Тест»"
links:
  web: "https://bank.example/apply?search_id={search_id}&offer={offer_id}"
  deep: "bank://apply?search_id={search_id}&offer={offer_id}"
loans:
  - id: year
    amount: {min: 100000, max: 200000}
    term: {min: 12, max: 12}
    rates:
      A: {min: 12, max: 12}
      B: {min: 12, max: 24}
      C: {min: 24, max: 24}
      unknown: {min: 36, max: 36}
    required_documents: ["Паспорт гражданина РФ"]
  - id: month-fee
    amount: {min: 200000.01, max: 300000}
    term: {min: 1, max: 1}
    rates:
      A: {min: 12, max: 12}
      B: {min: 12, max: 12}
      C: {min: 12, max: 12}
      unknown: {min: 12, max: 12}
    issue_fee: 1000
    choosable_documents: ["2-НДФЛ, Справка по форме банка"]
cards:
  - id: card
    limit: {min: 10000, max: 100000}
    grace_period: 55
    cc_rate: 5
    rates:
      A: {min: 24, max: 36}
      B: {min: 24, max: 36}
      C: {min: 24, max: 36}
      unknown: {min: 24, max: 36}
    special_conditions: ["Кешбэк 1%"]
`

func mustParse(t *testing.T, data string) *Catalog {
	t.Helper()
	c, err := Parse("catalog.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func mustDefault(t *testing.T) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return c
}

// lineOf is the 1-based line of the first line of data containing s.
func lineOf(t *testing.T, data, s string) int {
	t.Helper()
	for i, l := range strings.Split(data, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the catalog", s)
	return 0
}

// edit replaces old by new in the fixture, once, failing when old is not there.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(fixture, old) {
		t.Fatalf("%q not in the fixture", old)
	}
	return strings.Replace(fixture, old, new, 1)
}

func TestDefaultCatalog(t *testing.T) {
	c := mustDefault(t)
	if got, want := c.Version(), "2026-12.1"; got != want {
		t.Errorf("Version() = %q, want %q", got, want)
	}
	if got, want := c.BankName(), "АО «Лоанфлоу Банк»"; got != want {
		t.Errorf("BankName() = %q, want %q", got, want)
	}
}

func TestBankName(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"as written", fixture, "АО «Тест»"},
		{"left out", edit(t, "bank_name: \"АО «Тест»\"\n", ""), "АО «Лоанфлоу Банк»"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.yaml).BankName(); got != tt.want {
				t.Errorf("BankName() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseErrorsNameFileLineAndRule(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		at   string // the error's line is the first one holding this text
		want string // the rest of the error after "catalog.yaml:LINE: "
	}{
		{"unknown key", edit(t, "    issue_fee: 1000\n", "    issue_fee: 1000\n    colour: red\n"),
			"colour", "unknown key colour"},
		{"unknown top-level key", fixture + "currency: RUB\n", "currency", "unknown key currency"},
		{"no version", edit(t, `version: "test-1"`, `version: ""`), "version", "version is required"},
		{"empty bank_name", edit(t, `bank_name: "АО «Тест»"`, `bank_name: " "`), "bank_name", "bank_name must not be empty"},
		{"amount min above max", edit(t, "{min: 100000, max: 200000}", "{min: 250000, max: 200000}"),
			"min: 250000", "loans[0].amount.min must not exceed max"},
		{"overlapping tiers", edit(t, "min: 200000.01", "min: 150000"),
			"min: 150000", "loans[1].amount.min overlaps tier year (up to 200000.00): tiers must not overlap"},
		{"gap between tiers", edit(t, "min: 200000.01", "min: 250000"),
			"min: 250000", "loans[1].amount.min leaves a gap after tier year: tiers split one amount range, so it must be 200000.01"},
		{"one tier", fixture[:strings.Index(fixture, "  - id: month-fee")] + fixture[strings.Index(fixture, "cards:"):],
			"loans:", "loans: at least two tiers are required"},
		{"no cards", fixture[:strings.Index(fixture, "cards:")], "version", "cards: at least one card is required"},
		{"amount with three decimals", edit(t, "issue_fee: 1000", "issue_fee: 1.234"),
			"issue_fee", `"1.234" is not an amount of roubles with at most 2 decimals`},
		{"fee as large as the amount", edit(t, "issue_fee: 1000", "issue_fee: 200000.01"),
			"issue_fee", "loans[1].issue_fee must be below amount.min"},
		{"term of zero months", edit(t, "term: {min: 1, max: 1}", "term: {min: 0, max: 1}"),
			"min: 0, max: 1", "loans[1].term must lie within 1 to 600 months"},
		{"term min above max", edit(t, "term: {min: 12, max: 12}", "term: {min: 24, max: 12}"),
			"min: 24, max: 12", "loans[0].term.min must not exceed max"},
		{"rate min above max", edit(t, "B: {min: 12, max: 24}", "B: {min: 25, max: 24}"),
			"min: 25", "loans[0].rates.B.min must not exceed max"},
		{"rate not a number", edit(t, "B: {min: 12, max: 24}", "B: {min: .nan, max: 24}"),
			".nan", `".nan" is not a percentage with at most 3 decimals`},
		{"missing grade", edit(t, "      unknown: {min: 36, max: 36}\n", ""),
			"- id: year", "loans[0].rates.unknown needs min and max"},
		{"unknown grade", edit(t, "      unknown: {min: 36, max: 36}\n", "      unknown: {min: 36, max: 36}\n      D: {min: 40, max: 40}\n"),
			"D: {min: 40", "loans[0].rates.D is not a grade (want A, B, C, unknown)"},
		{"missing id", edit(t, "  - id: year\n    amount", "  - amount"),
			"- amount: {min: 100000", "loans[0].id is required"},
		{"http web link", edit(t, "https://bank.example", "http://bank.example"),
			"web:", "links.web must render to an absolute https:// URL"},
		{"relative web link", edit(t, "https://bank.example/apply", "/apply"),
			"web:", "links.web must render to an absolute https:// URL"},
		{"web deep link", edit(t, "bank://apply", "https://bank.example/app"),
			"deep:", "links.deep must render to an absolute app URL, scheme://..."},
		{"link without offer_id", edit(t, "&offer={offer_id}\"\n  deep", "\"\n  deep"),
			"web:", "links.web must contain {search_id} and {offer_id}"},
		{"unknown placeholder", edit(t, "bank://apply?", "bank://apply?utm={campaign}&"),
			"deep:", "links.deep has a placeholder other than {search_id} and {offer_id}"},
		{"no links", edit(t, "  web: \"https://bank.example/apply?search_id={search_id}&offer={offer_id}\"\n  deep: \"bank://apply?search_id={search_id}&offer={offer_id}\"\n", "  web: \"\"\n"),
			"links:", "links: at least one of web and deep is required"},
		{"card without grace period", edit(t, "    grace_period: 55\n", ""),
			"- id: card", "cards[0].grace_period is required, 0 to 365 days"},
		{"card cc_rate of zero", edit(t, "cc_rate: 5", "cc_rate: 0"),
			"cc_rate", "cards[0].cc_rate is required, above 0 and at most 100 percent of the debt"},
		{"empty alternative", edit(t, "2-НДФЛ, Справка", "2-НДФЛ, , Справка"),
			"2-НДФЛ", "loans[1].choosable_documents[0] has an empty entry"},
		{"documents not a list", edit(t, `required_documents: ["Паспорт гражданина РФ"]`, `required_documents: {a: b}`),
			"required_documents", "found a mapping where a list belongs"},
		{"catalog not a mapping", "- a\n- b\n", "- a", "found a list where a mapping belongs"},
		{"fee leaves no ПСК", edit(t, "issue_fee: 1000", "issue_fee: 200000"),
			"issue_fee", "loans[1] has no ПСК for grade A: issue_fee is too large for the amounts"},
		{"not YAML", edit(t, "cards:\n", "cards: [\n"), "cards:", "did not find expected node content"},
		{"two documents", fixture + "---\nversion: x\n", "---", "a catalog is one YAML document, found another"},
		{"empty", "# nothing here\n", "nothing", "the catalog is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("catalog.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			want := fmt.Sprintf("catalog.yaml:%d: %s", lineOf(t, tt.yaml, tt.at), tt.want)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error =\n%v\nwant it to contain\n%s", err, want)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	// Values that do not read are all reported, by the decoder, before any rule is checked.
	data := edit(t, "issue_fee: 1000", "issue_fee: 1.234")
	data = strings.Replace(data, "grace_period: 55", "grace_period: many", 1)
	_, err := Parse("catalog.yaml", []byte(data))
	for _, want := range []string{
		fmt.Sprintf("catalog.yaml:%d: \"1.234\" is not an amount", lineOf(t, data, "issue_fee")),
		fmt.Sprintf("catalog.yaml:%d: \"many\" is not a whole number", lineOf(t, data, "grace_period")),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error =\n%v\nwant it to contain %q", err, want)
		}
	}
	// With every value readable, every broken rule is reported.
	data = edit(t, "cc_rate: 5", "cc_rate: 0")
	data = strings.Replace(data, `version: "test-1"`, `version: ""`, 1)
	_, err = Parse("catalog.yaml", []byte(data))
	for _, want := range []string{"catalog.yaml:1: version is required", "cards[0].cc_rate is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error =\n%v\nwant it to contain %q", err, want)
		}
	}
}

func TestParseDuplicateID(t *testing.T) {
	data := edit(t, "id: card", "id: year")
	_, err := Parse("catalog.yaml", []byte(data))
	// The loan uses the id first; the card's use is the error.
	want := fmt.Sprintf("catalog.yaml:%d: cards[0].id \"year\" is already used on line %d",
		lineOf(t, data, "cards:")+1, lineOf(t, data, "- id: year"))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error =\n%v\nwant it to contain %q", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(fixture), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(edit(t, "cc_rate: 5", "cc_rate: 0")), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(good); err != nil || c.Version() != "test-1" {
		t.Errorf("Load(good) = %v, %v", c, err)
	}
	want := fmt.Sprintf("%s:%d: cards[0].cc_rate", bad, lineOf(t, fixture, "cc_rate"))
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load(bad) error = %v, want it to start with %q", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load(missing) succeeded")
	}
}

// TestEqual: two parses of one catalog are equal whatever their comments; any change to what
// the catalog holds makes them differ, so that a reload can refuse it under the same version.
func TestEqual(t *testing.T) {
	c := mustParse(t, fixture)
	for _, tt := range []struct {
		name string
		yaml string
		want bool
	}{
		{"the same file", fixture, true},
		{"a comment added", "# a comment\n" + fixture, true},
		{"a rate", edit(t, "A: {min: 12, max: 12}", "A: {min: 12, max: 12.5}"), false},
		{"a fee", edit(t, "issue_fee: 1000", "issue_fee: 1000.01"), false},
		{"a document", edit(t, "Кешбэк 1%", "Кешбэк 2%"), false},
		{"the bank name", edit(t, "АО «Тест»", "АО «Тест 2»"), false},
		{"the version", edit(t, `version: "test-1"`, `version: "test-2"`), false},
	} {
		if got := c.Equal(mustParse(t, tt.yaml)); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
}
