// Package policy is scoring's credit policy: the limits, debt-to-income rules and bureau grades
// that decide whether and up to how much the bank lends, read from a versioned YAML file, and
// the decision itself. It has no I/O beyond reading that file.
package policy

import (
	_ "embed"
	"fmt"
	"os"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/services/scoring/internal/profile"
)

// defaultYAML is the policy used when none is configured; its comments document every setting.
//
//go:embed default.yaml
var defaultYAML []byte

// basis is the denominator of the shares kept in basis points: 5000 is 0.5.
const basis = 10_000

// Policy is a validated credit policy. It cannot change once read and is safe for concurrent
// use.
type Policy struct {
	version string
	loan    loanRules
	card    cardRules
	// underwriting is nil when the policy refers nothing to an officer.
	underwriting *underwriting
}

// underwriting says which applications an officer decides instead of the policy, how soon,
// and what applies when nobody does.
type underwriting struct {
	deadlineShare int64 // share of the answer deadline officers have, in basis points
	fallback      string
	loan, card    *referRule // nil: the product is never referred
}

// referRule refers a known client's approval of one product to an officer.
type referRule struct {
	amountAbove partnerapi.Money // the loan amount asked for, or the card limit qualified for, above this
	grades      []string         // or the client's bureau grade is one of these
}

// Fallbacks of the underwriting section.
const (
	FallbackReject     = "reject"
	FallbackPreApprove = "pre_approve"
)

// limits are the rules a loan and a card share. For a card the amounts are credit limits.
type limits struct {
	min, max   partnerapi.Money
	maxDTI     int64 // share of income all debt payments may take, in basis points
	salaryDTI  int64 // added to maxDTI for salary clients, in basis points
	unknownMax partnerapi.Money
	grades     map[string]grade
}

// grade is what one bureau grade qualifies for.
type grade struct {
	max  partnerapi.Money
	rate float64 // loans only: % a year, to estimate the new monthly payment
}

type loanRules struct {
	limits
	termMin, termMax int
}

type cardRules struct {
	limits
	minPayment int64 // monthly payment assumed for debt-to-income, share of the limit in basis points
}

// Default returns the built-in policy, default.yaml.
func Default() (*Policy, error) { return Parse("default.yaml", defaultYAML) }

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a policy given as YAML. Errors name the file, the line and the broken rule,
// all of them at once.
func Parse(name string, data []byte) (*Policy, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	r := &reader{name: name}
	top := r.root(root, "version", "loan", "credit_card", "underwriting")
	p := &Policy{}
	p.version, _ = top.str("version")
	p.loan = readLoan(top.child("loan", "amount", "term", "max_dti", "salary_client_dti_bonus", "unknown_client", "grades"))
	p.card = readCard(top.child("credit_card", "limit", "max_dti", "salary_client_dti_bonus", "min_payment_share", "unknown_client", "grades"))
	if top.has("underwriting") {
		p.underwriting = readUnderwriting(top.child("underwriting", "deadline_share", "fallback", "loan", "credit_card"), p)
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// Version returns the policy's version, recorded with every decision.
func (p *Policy) Version() string { return p.version }

func readLoan(m *mapping) loanRules {
	var l loanRules
	l.min, l.max = moneyRange(m.child("amount", "min", "max"))
	term := m.child("term", "min", "max")
	lo, loN := term.integer("min")
	hi, hiN := term.integer("max")
	if loN != nil && lo < 1 {
		term.fail(loN, "min", "must be at least 1 month")
	}
	if loN != nil && hiN != nil && hi < lo {
		term.fail(hiN, "max", "must not be below %s", term.sub("min"))
	}
	l.termMin, l.termMax = lo, hi
	readDTI(m, &l.limits)
	l.unknownMax = capped(m.child("unknown_client", "max_amount"), "max_amount", l.limits)
	grades := m.child("grades")
	l.grades = map[string]grade{}
	for _, name := range grades.keys {
		if !validGrade(grades, name) {
			continue
		}
		g := grades.child(name, "max_amount", "rate")
		var gr grade
		gr.max = capped(g, "max_amount", l.limits)
		var rateN *yaml.Node
		gr.rate, rateN = g.number("rate")
		if rateN != nil && (gr.rate < 0 || gr.rate > 100) {
			g.fail(rateN, "rate", "must be between 0 and 100 (%% a year)")
		}
		l.grades[name] = gr
	}
	return l
}

func readCard(m *mapping) cardRules {
	var c cardRules
	c.min, c.max = moneyRange(m.child("limit", "min", "max"))
	readDTI(m, &c.limits)
	c.minPayment, _ = m.share("min_payment_share", false)
	c.unknownMax = capped(m.child("unknown_client", "max_limit"), "max_limit", c.limits)
	grades := m.child("grades")
	c.grades = map[string]grade{}
	for _, name := range grades.keys {
		if !validGrade(grades, name) {
			continue
		}
		g := grades.child(name, "max_limit")
		c.grades[name] = grade{max: capped(g, "max_limit", c.limits)}
	}
	return c
}

func readUnderwriting(m *mapping, p *Policy) *underwriting {
	u := &underwriting{}
	u.deadlineShare, _ = m.share("deadline_share", false)
	var n *yaml.Node
	if u.fallback, n = m.str("fallback"); n != nil && u.fallback != FallbackReject && u.fallback != FallbackPreApprove {
		m.fail(n, "fallback", "must be %s or %s", FallbackReject, FallbackPreApprove)
	}
	if m.has("loan") {
		u.loan = readRefer(m.child("loan", "amount_above", "grades"), "amount_above", p.loan.limits)
	}
	if m.has("credit_card") {
		u.card = readRefer(m.child("credit_card", "limit_above", "grades"), "limit_above", p.card.limits)
	}
	if m.node != nil && u.loan == nil && u.card == nil {
		m.r.errorf(m.line, "%s refers nothing: give loan, credit_card or both", m.path)
	}
	return u
}

// readRefer reads one product's referral rule: an amount threshold within the product's range,
// and optionally bureau grades the policy lends to.
func readRefer(m *mapping, key string, l limits) *referRule {
	r := &referRule{amountAbove: capped(m, key, l)}
	if !m.has("grades") {
		return r
	}
	n := m.value("grades")
	if n.Kind != yaml.SequenceNode {
		m.fail(n, "grades", "must be a list of bureau grades")
		return r
	}
	for _, g := range n.Content {
		switch _, lends := l.grades[g.Value]; {
		case g.Kind != yaml.ScalarNode || !profile.ValidGrade(g.Value):
			m.fail(g, "grades", "must list bureau grades A, B, C or D, not %q", g.Value)
		case !lends:
			m.fail(g, "grades", "lists %s, a grade the policy does not lend to", g.Value)
		case slices.Contains(r.grades, g.Value):
			m.fail(g, "grades", "lists %s twice", g.Value)
		default:
			r.grades = append(r.grades, g.Value)
		}
	}
	return r
}

// moneyRange reads min and max, with 0 < min ≤ max.
func moneyRange(m *mapping) (partnerapi.Money, partnerapi.Money) {
	lo, loN := m.money("min")
	hi, hiN := m.money("max")
	if loN != nil && lo <= 0 {
		m.fail(loN, "min", "must be greater than 0")
	}
	if loN != nil && hiN != nil && hi < lo {
		m.fail(hiN, "max", "must not be below %s", m.sub("min"))
	}
	return lo, hi
}

// capped reads an amount that must lie within the product's min and max, so that no limit of
// a grade or of unknown clients can exceed the policy's maximum. It is not checked against a
// range that is itself invalid: that error is already reported.
func capped(m *mapping, key string, l limits) partnerapi.Money {
	v, n := m.money(key)
	rangeOK := l.min > 0 && l.min <= l.max
	if n != nil && rangeOK && (v < l.min || v > l.max) {
		m.fail(n, key, "must be between the product's min %s and max %s", l.min, l.max)
	}
	return v
}

// readDTI reads the debt-to-income settings: maxDTI > 0 and maxDTI + salary bonus ≤ 1.
func readDTI(m *mapping, l *limits) {
	var n, bonusN *yaml.Node
	l.maxDTI, n = m.share("max_dti", false)
	l.salaryDTI, bonusN = m.share("salary_client_dti_bonus", true)
	if n != nil && bonusN != nil && l.maxDTI+l.salaryDTI > basis {
		m.fail(bonusN, "salary_client_dti_bonus", "plus %s must not exceed 1", m.sub("max_dti"))
	}
}

// validGrade reports whether a grades key is a bureau grade, reporting it when not.
func validGrade(grades *mapping, name string) bool {
	if profile.ValidGrade(name) {
		return true
	}
	grades.r.errorf(grades.lines[name], "%s is not a bureau grade: grades are A, B, C or D", grades.sub(name))
	return false
}
