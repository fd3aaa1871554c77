package catalog

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// The file's shape. The decoder refuses unknown keys (KnownFields); scalars unmarshal from
// their yaml.Node so that they keep their line for the rule checks that follow.
type file struct {
	Version  str    `yaml:"version"`
	BankName str    `yaml:"bank_name"`
	Links    links  `yaml:"links"`
	PSKCaps  caps   `yaml:"psk_caps"`
	Loans    []loan `yaml:"loans"`
	Cards    []card `yaml:"cards"`
}

type links struct {
	Web  str `yaml:"web"`
	Deep str `yaml:"deep"`
}

// caps are the largest ПСК the self-check lets leave, by product category.
type caps struct {
	Loan       percent `yaml:"loan"`
	CreditCard percent `yaml:"credit_card"`
}

// common is what loans and cards share, inlined into both.
type common struct {
	ID                 str              `yaml:"id"`
	Rates              map[string]rates `yaml:"rates"`
	RequiredDocuments  []str            `yaml:"required_documents"`
	ChoosableDocuments []str            `yaml:"choosable_documents"`
	SpecialConditions  []str            `yaml:"special_conditions"`
}

type loan struct {
	common   `yaml:",inline"`
	Amount   moneyRange `yaml:"amount"`
	Term     termRange  `yaml:"term"`
	IssueFee money      `yaml:"issue_fee"`
}

type card struct {
	common      `yaml:",inline"`
	Limit       moneyRange `yaml:"limit"`
	GracePeriod integer    `yaml:"grace_period"`
	CCRate      percent    `yaml:"cc_rate"`
	AnnualFee   money      `yaml:"annual_fee"`
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

// str is a string scalar; line is 0 when the key is absent.
type str struct {
	v    string
	line int
}

// UnmarshalYAML keeps the scalar and its line.
func (s *str) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "want a string")
	}
	s.v, s.line = n.Value, n.Line
	return nil
}

// money is an amount of roubles, read exactly into kopecks.
type money struct {
	v    partnerapi.Money
	line int
}

// UnmarshalYAML reads roubles exactly, refusing a third decimal rather than rounding it.
func (m *money) UnmarshalYAML(n *yaml.Node) error {
	v, err := partnerapi.ParseMoney(strings.ReplaceAll(n.Value, "_", ""))
	if n.Kind != yaml.ScalarNode || err != nil {
		return typeError(n, "%q is not an amount of roubles with at most 2 decimals", n.Value)
	}
	m.v, m.line = v, n.Line
	return nil
}

// integer is a whole number: days or months.
type integer struct {
	v    int
	line int
}

// UnmarshalYAML reads a whole number and its line.
func (i *integer) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.Atoi(strings.ReplaceAll(n.Value, "_", ""))
	if n.Kind != yaml.ScalarNode || err != nil {
		return typeError(n, "%q is not a whole number", n.Value)
	}
	i.v, i.line = v, n.Line
	return nil
}

// percent is a yearly percentage with at most three decimals, the precision of the ПСК.
type percent struct {
	v    float64
	line int
}

// UnmarshalYAML reads a finite percentage and its line.
func (p *percent) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(v) || math.IsInf(v, 0) ||
		math.Abs(v*1000-math.Round(v*1000)) > 1e-6 {
		return typeError(n, "%q is not a percentage with at most 3 decimals", n.Value)
	}
	p.v, p.line = v, n.Line
	return nil
}

// typeError is a yaml.TypeError, which the decoder collects and carries on after, so that one
// run reports every bad value.
func typeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
}

// Parse reads and validates a catalog. Every error names the file and line and the rule broken,
// "catalog.yaml:12: loans[1].amount.min must not exceed max", and all of them are reported at
// once so that an operator fixes the file in one pass.
func Parse(name string, data []byte) (*Catalog, error) {
	// The node tree gives the lines of sections and products that a missing key is reported
	// at; the typed decode gives the values and refuses unknown keys.
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1: the catalog is empty", name)
		}
		return nil, yamlError(name, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s:1: the catalog is empty", name)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(name, err)
	default:
		return nil, fmt.Errorf("%s:%d: a catalog is one YAML document, found another", name, max(next.Line, 1))
	}
	var f file
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, yamlError(name, err)
	}
	v := &validator{name: name, root: doc.Content[0]}
	c := v.catalog(f)
	if err := errors.Join(v.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlLine matches the position yaml.v3 puts in its errors.
var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// wrongKind matches yaml.v3's error for a value of the wrong kind, which names Go types.
var wrongKind = regexp.MustCompile(`^cannot unmarshal !!(\w+) .*into (\S+)$`)

// yamlError rewrites the decoder's errors, one per line, as "name:line: reason". yaml.v3 leaves
// the line out of a syntax error on the first line.
func yamlError(name string, err error) error {
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		if m := yamlLine.FindStringSubmatch(line); m != nil {
			reason := m[2]
			if field, ok := strings.CutPrefix(reason, "field "); ok {
				reason = "unknown key " + strings.Split(field, " ")[0]
			}
			if k := wrongKind.FindStringSubmatch(reason); k != nil {
				reason = fmt.Sprintf("found %s where %s belongs", kind(k[1]), kind(k[2]))
			}
			out = append(out, fmt.Errorf("%s:%s: %s", name, m[1], reason))
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("%s:1: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return errors.Join(out...)
}

// kind names a YAML tag or one of the file's Go types in the file's terms: every type that is
// not a slice or a scalar (which report their own errors) is read from a mapping.
func kind(t string) string {
	switch {
	case t == "seq" || strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "map" || strings.Contains(t, "."):
		return "a mapping"
	}
	return "a single value"
}

// validator checks the rules the YAML shape cannot express, collecting every violation.
type validator struct {
	name string
	root *yaml.Node // the document's top node
	errs []error
}

func (v *validator) fail(line int, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s", v.name, max(line, 1), fmt.Sprintf(format, args...)))
}

// keyLine is the line of a top-level key, or the first line when the key is absent.
func (v *validator) keyLine(key string) int {
	if k, _ := v.section(key); k != nil {
		return k.Line
	}
	return 1
}

// itemLine is the line the i-th item of a top-level list starts at.
func (v *validator) itemLine(key string, i int) int {
	if _, n := v.section(key); n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i].Line
	}
	return v.keyLine(key)
}

// section finds a top-level key and its value.
func (v *validator) section(key string) (k, val *yaml.Node) {
	if v.root.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(v.root.Content); i += 2 {
		if v.root.Content[i].Value == key {
			return v.root.Content[i], v.root.Content[i+1]
		}
	}
	return nil, nil
}

// productID allows what a URL carries unescaped, since ids go into the proposal links.
var productID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (v *validator) catalog(f file) *Catalog {
	c := &Catalog{version: f.Version.v, bankName: f.BankName.v, web: f.Links.Web.v, deep: f.Links.Deep.v}
	if strings.TrimSpace(c.version) == "" {
		v.fail(v.keyLine("version"), "version is required")
	}
	switch {
	case f.BankName.line == 0:
		c.bankName = defaultBankName
	case strings.TrimSpace(c.bankName) == "":
		v.fail(f.BankName.line, "bank_name must not be empty (leave it out for %s)", defaultBankName)
	}
	if c.web == "" && c.deep == "" {
		v.fail(v.keyLine("links"), "links: at least one of web and deep is required")
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

	c.pskCap = map[partnerapi.ProductType]float64{}
	for _, pc := range []struct {
		t  partnerapi.ProductType
		cp percent
	}{{partnerapi.ProductLoan, f.PSKCaps.Loan}, {partnerapi.ProductCreditCard, f.PSKCaps.CreditCard}} {
		t, cp := pc.t, pc.cp
		switch {
		case cp.line == 0:
			c.pskCap[t] = LawPSKCap
		case cp.v <= 0 || cp.v > LawPSKCap:
			v.fail(cp.line, "psk_caps.%s must be above 0 and at most %v (%% a year, the law's cap)", t, LawPSKCap)
		default:
			c.pskCap[t] = cp.v
		}
	}

	ids := map[string]int{}
	if len(f.Loans) < 2 {
		v.fail(v.keyLine("loans"), "loans: at least two tiers are required, splitting the amount range")
	}
	for i, l := range f.Loans {
		path, line := fmt.Sprintf("loans[%d]", i), v.itemLine("loans", i)
		p := loanProduct{product: v.product(path, line, l.common, ids, "amount", l.Amount, "issue_fee", l.IssueFee)}
		p.term = v.termRange(path+".term", line, l.Term)
		v.pskExists(path, max(l.IssueFee.line, line), "issue_fee", p.product, p.term.Min, p.term.Max)
		c.loans = append(c.loans, p)
	}
	v.tiers(f.Loans)
	slices.SortStableFunc(c.loans, func(a, b loanProduct) int { return cmp.Compare(a.amount.Min, b.amount.Min) })

	if len(f.Cards) < 1 {
		v.fail(v.keyLine("cards"), "cards: at least one card is required")
	}
	for i, k := range f.Cards {
		path, line := fmt.Sprintf("cards[%d]", i), v.itemLine("cards", i)
		p := cardProduct{product: v.product(path, line, k.common, ids, "limit", k.Limit, "annual_fee", k.AnnualFee)}
		p.gracePeriod, p.ccRate = k.GracePeriod.v, k.CCRate.v
		if k.GracePeriod.line == 0 || p.gracePeriod < 0 || p.gracePeriod > 365 {
			v.fail(max(k.GracePeriod.line, line), "%s.grace_period is required, 0 to 365 days", path)
		}
		if k.CCRate.line == 0 || p.ccRate <= 0 || p.ccRate > 100 {
			v.fail(max(k.CCRate.line, line), "%s.cc_rate is required, above 0 and at most 100 percent of the debt", path)
		}
		v.pskExists(path, max(k.AnnualFee.line, line), "annual_fee", p.product, cardScenarioMonths)
		c.cards = append(c.cards, p)
	}
	slices.SortStableFunc(c.cards, func(a, b cardProduct) int { return cmp.Compare(a.amount.Min, b.amount.Min) })
	return c
}

// product checks and converts what loans and cards share; line is where the product starts
// and ids holds the line of every id seen so far.
func (v *validator) product(path string, line int, c common, ids map[string]int,
	amountKey string, amount moneyRange, feeKey string, fee money) product {
	id := c.ID
	p := product{id: id.v, fee: fee.v}
	switch {
	case id.line == 0:
		v.fail(line, "%s.id is required", path)
	case !productID.MatchString(id.v):
		v.fail(id.line, "%s.id %q must be letters, digits, '.', '_' or '-'", path, id.v)
	case ids[id.v] != 0:
		v.fail(id.line, "%s.id %q is already used on line %d: ids go into the links and must be unique", path, id.v, ids[id.v])
	default:
		ids[id.v] = id.line
	}
	p.amount = v.moneyRange(path+"."+amountKey, line, amount)
	p.rates = v.rates(path+".rates", line, c.Rates)
	if fee.v < 0 {
		v.fail(fee.line, "%s.%s must not be negative", path, feeKey)
	} else if fee.v > 0 && fee.v >= p.amount.Min {
		v.fail(fee.line, "%s.%s must be below %s.min", path, feeKey, amountKey)
	}
	p.requiredDocuments = v.texts(path+".required_documents", c.RequiredDocuments, false)
	p.choosableDocuments = v.texts(path+".choosable_documents", c.ChoosableDocuments, true)
	p.specialConditions = v.texts(path+".special_conditions", c.SpecialConditions, false)
	return p
}

func (v *validator) moneyRange(path string, line int, r moneyRange) partnerapi.MoneyRange {
	if r.Min.line == 0 || r.Max.line == 0 {
		v.fail(max(r.Min.line, r.Max.line, line), "%s needs min and max", path)
		return partnerapi.MoneyRange{}
	}
	if r.Min.v <= 0 {
		v.fail(r.Min.line, "%s.min must be above 0", path)
	}
	if r.Min.v > r.Max.v {
		v.fail(r.Min.line, "%s.min must not exceed max", path)
	}
	return partnerapi.MoneyRange{Min: r.Min.v, Max: r.Max.v}
}

func (v *validator) termRange(path string, line int, r termRange) partnerapi.TermRange {
	if r.Min.line == 0 || r.Max.line == 0 {
		v.fail(max(r.Min.line, r.Max.line, line), "%s needs min and max", path)
		return partnerapi.TermRange{}
	}
	if r.Min.v < 1 || r.Max.v > 600 {
		v.fail(r.Min.line, "%s must lie within 1 to 600 months", path)
	}
	if r.Min.v > r.Max.v {
		v.fail(r.Min.line, "%s.min must not exceed max", path)
	}
	return partnerapi.TermRange{Min: r.Min.v, Max: r.Max.v}
}

// rates requires a range for every grade and refuses grades nobody is scored with.
func (v *validator) rates(path string, line int, in map[string]rates) map[string]rateRange {
	out := map[string]rateRange{}
	for _, g := range grades {
		r, ok := in[g]
		if !ok || r.Min.line == 0 || r.Max.line == 0 {
			v.fail(max(r.Min.line, r.Max.line, line), "%s.%s needs min and max: every product prices grades %s",
				path, g, strings.Join(grades, ", "))
			continue
		}
		if r.Min.v <= 0 || r.Max.v > 100 {
			v.fail(r.Min.line, "%s.%s must lie above 0 and at most 100 percent", path, g)
		}
		if r.Min.v > r.Max.v {
			v.fail(r.Min.line, "%s.%s.min must not exceed max", path, g)
		}
		out[g] = rateRange{r.Min.v, r.Max.v}
	}
	var unknown []string
	for g := range in {
		if !slices.Contains(grades, g) {
			unknown = append(unknown, g)
		}
	}
	slices.Sort(unknown) // map order is random; errors are not
	for _, g := range unknown {
		v.fail(max(in[g].Min.line, line), "%s.%s is not a grade (want %s)", path, g, strings.Join(grades, ", "))
	}
	return out
}

// texts checks a list of document names or conditions. A choosable entry is one set of
// alternatives separated by commas, each of which must be named.
func (v *validator) texts(path string, in []str, alternatives bool) []string {
	var out []string
	for i, s := range in {
		empty := strings.TrimSpace(s.v) == ""
		if alternatives {
			for _, alt := range strings.Split(s.v, ",") {
				empty = empty || strings.TrimSpace(alt) == ""
			}
		}
		if empty {
			v.fail(s.line, "%s[%d] has an empty entry", path, i)
		}
		out = append(out, s.v)
	}
	return out
}

// pskExists makes sure every offer of p has a ПСК: it computes the ПСК at the corners of the
// product's whole range for every grade. The ПСК falls as the amount grows (the fee weighs
// less), so the corners bound every amount an offer can be capped at.
func (v *validator) pskExists(path string, line int, feeKey string, p product, terms ...int) {
	if p.amount.Min <= 0 || p.amount.Min > p.amount.Max || len(p.rates) != len(grades) || slices.Contains(terms, 0) {
		return // already reported
	}
	for _, g := range grades {
		if _, ok := pskRange(p.fee, p.amount, p.rates[g], terms...); !ok {
			v.fail(line, "%s has no ПСК for grade %s: %s is too large for the amounts", path, g, feeKey)
			return
		}
	}
}

// tiers checks that the loan tiers, taken by amount, split one amount range: each starts one
// kopeck above the previous one's max, so that every amount belongs to exactly one tier.
func (v *validator) tiers(loans []loan) {
	order := make([]int, len(loans))
	for i, l := range loans {
		if l.Amount.Min.line == 0 || l.Amount.Max.line == 0 {
			return // a range is missing, already reported: no tier order to check
		}
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(loans[a].Amount.Min.v, loans[b].Amount.Min.v) })
	for k := 1; k < len(order); k++ {
		prev, cur := loans[order[k-1]], loans[order[k]]
		path := fmt.Sprintf("loans[%d].amount.min", order[k])
		switch want := prev.Amount.Max.v + 1; {
		case cur.Amount.Min.v < want:
			v.fail(cur.Amount.Min.line, "%s overlaps tier %s (up to %s): tiers must not overlap", path, prev.ID.v, prev.Amount.Max.v)
		case cur.Amount.Min.v > want:
			v.fail(cur.Amount.Min.line, "%s leaves a gap after tier %s: tiers split one amount range, so it must be %s", path, prev.ID.v, want)
		}
	}
}

// checkLink reports what is wrong with a link template, rendered with a sample search_id.
func checkLink(tmpl string, web bool) error {
	if !strings.Contains(tmpl, "{search_id}") || !strings.Contains(tmpl, "{offer_id}") {
		return errors.New("must contain {search_id} and {offer_id}, so that each offer has its own link")
	}
	s := render(tmpl, "00000000-0000-4000-8000-000000000000", "product")
	if strings.ContainsAny(s, "{}") {
		return errors.New("has a placeholder other than {search_id} and {offer_id}")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a URL: %v", err)
	}
	switch {
	case web && (u.Scheme != "https" || u.Host == ""):
		return errors.New("must render to an absolute https:// URL")
	case !web && (u.Scheme == "" || u.Scheme == "http" || u.Scheme == "https" || !strings.HasPrefix(s, u.Scheme+"://")):
		return errors.New("must render to an absolute app URL, scheme://...")
	}
	return nil
}
