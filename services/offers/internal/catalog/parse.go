package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// The file's shape. Scalars keep their line so that rule violations can name it; unknown keys
// are refused by the decoder.
type file struct {
	Version  str    `yaml:"version"`
	BankName str    `yaml:"bank_name"`
	Links    links  `yaml:"links"`
	Loans    []loan `yaml:"loans"`
	Cards    []card `yaml:"cards"`
}

type links struct {
	Web  str `yaml:"web"`
	Deep str `yaml:"deep"`
}

type loan struct {
	ID                 str              `yaml:"id"`
	Amount             moneyRange       `yaml:"amount"`
	Term               termRange        `yaml:"term"`
	Rates              map[string]rates `yaml:"rates"`
	IssueFee           money            `yaml:"issue_fee"`
	RequiredDocuments  []string         `yaml:"required_documents"`
	ChoosableDocuments []string         `yaml:"choosable_documents"`
	SpecialConditions  []string         `yaml:"special_conditions"`
}

type card struct {
	ID                 str              `yaml:"id"`
	Limit              moneyRange       `yaml:"limit"`
	GracePeriod        integer          `yaml:"grace_period"`
	CCRate             percent          `yaml:"cc_rate"`
	AnnualFee          money            `yaml:"annual_fee"`
	Rates              map[string]rates `yaml:"rates"`
	RequiredDocuments  []string         `yaml:"required_documents"`
	ChoosableDocuments []string         `yaml:"choosable_documents"`
	SpecialConditions  []string         `yaml:"special_conditions"`
}

type moneyRange struct {
	Min money `yaml:"min"`
	Max money `yaml:"max"`
}

type termRange struct {
	Min integer `yaml:"min"`
	Max integer `yaml:"max"`
}

type rates struct {
	Min percent `yaml:"min"`
	Max percent `yaml:"max"`
}

type str struct {
	v    string
	line int
}

func (s *str) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a string", n.Line)
	}
	s.v, s.line = n.Value, n.Line
	return nil
}

type money struct {
	v    partnerapi.Money
	line int
	set  bool
}

func (m *money) UnmarshalYAML(n *yaml.Node) error {
	v, err := partnerapi.ParseMoney(strings.ReplaceAll(n.Value, "_", ""))
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not an amount of roubles with at most 2 decimals", n.Line, n.Value)
	}
	m.v, m.line, m.set = v, n.Line, true
	return nil
}

type integer struct {
	v    int
	line int
	set  bool
}

func (i *integer) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not a whole number", n.Line, n.Value)
	}
	i.v, i.line, i.set = v, n.Line, true
	return nil
}

type percent struct {
	v    float64
	line int
	set  bool
}

func (p *percent) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.Abs(v*1000-math.Round(v*1000)) > 1e-6 {
		return fmt.Errorf("line %d: %q is not a percentage with at most 3 decimals", n.Line, n.Value)
	}
	p.v, p.line, p.set = v, n.Line, true
	return nil
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// Parse reads and validates a catalog; name (the file's path) prefixes every error, with the
// line: "catalog.yaml:12: loans[1].amount.min must not exceed max".
func Parse(name string, data []byte) (*Catalog, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, yamlError(name, err)
	}
	v := &validator{name: name}
	c := v.catalog(f)
	if err := errors.Join(v.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlError rewrites the decoder's errors as name:line: reason.
func yamlError(name string, err error) error {
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		if m := yamlLine.FindStringSubmatch(line); m != nil {
			reason := strings.Replace(m[2], "field ", "unknown key ", 1)
			if i := strings.Index(reason, " not found in type"); i >= 0 {
				reason = reason[:i]
			}
			out = append(out, fmt.Errorf("%s:%s: %s", name, m[1], reason))
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("%s: %v", name, err)
	}
	return errors.Join(out...)
}

type validator struct {
	name string
	errs []error
}

func (v *validator) fail(line int, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s", v.name, line, fmt.Sprintf(format, args...)))
}

func (v *validator) catalog(f file) *Catalog {
	c := &Catalog{version: f.Version.v, bankName: f.BankName.v, web: f.Links.Web.v, deep: f.Links.Deep.v}
	if c.version == "" {
		v.fail(1, "version is required")
	}
	if c.bankName == "" {
		v.fail(max(f.BankName.line, 1), "bank_name is required")
	}
	if c.web == "" && c.deep == "" {
		v.fail(1, "links: at least one of web and deep is required")
	}
	if c.web != "" {
		if err := checkLink(c.web, true); err != nil {
			v.fail(f.Links.Web.line, "links.web %v", err)
		}
	}
	if c.deep != "" {
		if err := checkLink(c.deep, false); err != nil {
			v.fail(f.Links.Deep.line, "links.deep %v", err)
		}
	}
	if len(f.Loans) < 1 {
		v.fail(1, "loans: at least one loan product is required")
	}
	if len(f.Cards) < 1 {
		v.fail(1, "cards: at least one card product is required")
	}
	ids := map[string]bool{}
	for i, l := range f.Loans {
		path := fmt.Sprintf("loans[%d]", i)
		p := loanProduct{
			id: v.id(l.ID, path, ids), requiredDocuments: l.RequiredDocuments, choosableDocuments: l.ChoosableDocuments,
			specialConditions: l.SpecialConditions, issueFee: l.IssueFee.v,
		}
		p.amountMin, p.amountMax = v.moneyRange(l.Amount, l.ID.line, path+".amount")
		p.termMin, p.termMax = v.termRange(l.Term, l.ID.line, path+".term")
		p.rates = v.rates(l.Rates, l.ID.line, path)
		for _, q := range c.loans {
			if p.amountMin <= q.amountMax && q.amountMin <= p.amountMax {
				v.fail(l.Amount.Min.line, "%s.amount overlaps loan %s: tiers must split the amount range", path, q.id)
			}
		}
		c.loans = append(c.loans, p)
	}
	for i, k := range f.Cards {
		path := fmt.Sprintf("cards[%d]", i)
		p := cardProduct{
			id: v.id(k.ID, path, ids), requiredDocuments: k.RequiredDocuments, choosableDocuments: k.ChoosableDocuments,
			specialConditions: k.SpecialConditions, annualFee: k.AnnualFee.v, gracePeriod: k.GracePeriod.v, ccRate: k.CCRate.v,
		}
		p.limitMin, p.limitMax = v.moneyRange(k.Limit, k.ID.line, path+".limit")
		p.rates = v.rates(k.Rates, k.ID.line, path)
		if !k.GracePeriod.set || k.GracePeriod.v < 0 || k.GracePeriod.v > 365 {
			v.fail(max(k.GracePeriod.line, k.ID.line), "%s.grace_period must be 0 to 365 days", path)
		}
		if !k.CCRate.set || k.CCRate.v <= 0 || k.CCRate.v > 100 {
			v.fail(max(k.CCRate.line, k.ID.line), "%s.cc_rate must be above 0 and at most 100 percent", path)
		}
		c.cards = append(c.cards, p)
	}
	return c
}

func (v *validator) id(s str, path string, seen map[string]bool) string {
	if s.v == "" {
		v.fail(max(s.line, 1), "%s.id is required", path)
	} else if seen[s.v] {
		v.fail(s.line, "%s.id %q is used twice", path, s.v)
	}
	seen[s.v] = true
	return s.v
}

func (v *validator) moneyRange(r moneyRange, line int, path string) (partnerapi.Money, partnerapi.Money) {
	if !r.Min.set || !r.Max.set {
		v.fail(max(r.Min.line, r.Max.line, line, 1), "%s needs min and max", path)
		return 0, 0
	}
	if r.Min.v <= 0 {
		v.fail(r.Min.line, "%s.min must be above 0", path)
	}
	if r.Min.v > r.Max.v {
		v.fail(r.Min.line, "%s.min must not exceed max", path)
	}
	return r.Min.v, r.Max.v
}

func (v *validator) termRange(r termRange, line int, path string) (int, int) {
	if !r.Min.set || !r.Max.set {
		v.fail(max(r.Min.line, r.Max.line, line, 1), "%s needs min and max", path)
		return 1, 1
	}
	if r.Min.v < 1 || r.Max.v > 600 {
		v.fail(r.Min.line, "%s must lie within 1 to 600 months", path)
	}
	if r.Min.v > r.Max.v {
		v.fail(r.Min.line, "%s.min must not exceed max", path)
	}
	return r.Min.v, r.Max.v
}

func (v *validator) rates(in map[string]rates, line int, path string) map[string]rateRange {
	out := map[string]rateRange{}
	for _, g := range Grades {
		r, ok := in[g]
		if !ok || !r.Min.set || !r.Max.set {
			v.fail(max(line, 1), "%s.rates.%s needs min and max", path, g)
			continue
		}
		if r.Min.v <= 0 || r.Max.v > 100 {
			v.fail(r.Min.line, "%s.rates.%s must lie above 0 and at most 100 percent", path, g)
		}
		if r.Min.v > r.Max.v {
			v.fail(r.Min.line, "%s.rates.%s.min must not exceed max", path, g)
		}
		out[g] = rateRange{r.Min.v, r.Max.v}
	}
	for g := range in {
		if _, ok := out[g]; !ok && !contains(Grades, g) {
			v.fail(in[g].Min.line, "%s.rates.%s: unknown grade (want A, B, C, unknown)", path, g)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
