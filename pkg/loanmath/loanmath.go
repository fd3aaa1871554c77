// Package loanmath is the credit arithmetic shared by scoring and offer assembly: annuity
// payments and schedules in kopecks, the largest affordable principal, and the full cost of
// credit (ПСК) as Federal Law 353-FZ art. 6 defines it. It has no I/O.
package loanmath

import (
	"errors"
	"math"
)

// monthlyRate converts a yearly percentage into the monthly rate as a fraction.
func monthlyRate(annualRatePct float64) float64 { return annualRatePct / 100 / 12 }

// roundHalfUp rounds a non-negative amount of kopecks to a whole kopeck.
func roundHalfUp(v float64) int64 { return int64(math.Floor(v + 0.5)) }

// Annuity returns the equal monthly payment, in kopecks rounded to the nearest kopeck, that
// repays principal kopecks over months at annualRatePct percent a year.
func Annuity(principal int64, annualRatePct float64, months int) int64 {
	if principal <= 0 || months <= 0 {
		return 0
	}
	r := monthlyRate(annualRatePct)
	if r == 0 {
		return roundHalfUp(float64(principal) / float64(months))
	}
	return roundHalfUp(float64(principal) * r / (1 - math.Pow(1+r, -float64(months))))
}

// MaxPrincipal returns the largest principal, in kopecks, whose annuity payment over months at
// annualRatePct is at most payment kopecks.
func MaxPrincipal(payment int64, annualRatePct float64, months int) int64 {
	if payment <= 0 || months <= 0 {
		return 0
	}
	r := monthlyRate(annualRatePct)
	var s float64
	if r == 0 {
		s = float64(payment) * float64(months)
	} else {
		s = float64(payment) * (1 - math.Pow(1+r, -float64(months))) / r
	}
	p := int64(math.Floor(s))
	for p > 0 && Annuity(p, annualRatePct, months) > payment {
		p--
	}
	for Annuity(p+1, annualRatePct, months) <= payment {
		p++
	}
	return p
}

// Schedule returns the monthly payments, in kopecks, of an annuity loan: every payment is
// Annuity(...) except the last, which repays the remaining balance and its interest so that
// the principal is repaid to the kopeck.
func Schedule(principal int64, annualRatePct float64, months int) []int64 {
	if principal <= 0 || months <= 0 {
		return nil
	}
	r := monthlyRate(annualRatePct)
	pay := Annuity(principal, annualRatePct, months)
	out := make([]int64, months)
	balance := principal
	for k := 0; k < months; k++ {
		interest := roundHalfUp(float64(balance) * r)
		if k == months-1 {
			out[k] = balance + interest
			break
		}
		out[k] = pay
		balance -= pay - interest
	}
	return out
}

// Flow is one cash flow of a credit agreement, as 353-FZ art. 6 p. 2 counts it: Q whole base
// periods and E fractions of a base period after the loan is granted. Amount is in kopecks,
// negative for money the borrower receives and positive for what the borrower pays.
type Flow struct {
	Q      int
	E      float64
	Amount int64
}

// ErrNoPSK means the cash flows have no ПСК: they never change sign, or the solution lies
// outside any rate a credit agreement can have.
var ErrNoPSK = errors.New("loanmath: the cash flows have no ПСК")

// PSK returns the full cost of credit in percent a year, rounded to three decimals:
// ПСК = i × ЧБП × 100, where ЧБП is the number of base periods in a year (12 for monthly) and
// i solves Σ ДПk / ((1 + ek·i)(1 + i)^qk) = 0.
func PSK(flows []Flow, periodsPerYear int) (float64, error) {
	var in, out bool
	for _, f := range flows {
		in = in || f.Amount < 0
		out = out || f.Amount > 0
	}
	if periodsPerYear <= 0 || !in || !out {
		return 0, ErrNoPSK
	}
	// The net present value falls as i grows for a loan (money out first, back later). The
	// root is bracketed between a rate near -100% and a rate no credit product reaches, and
	// found by Newton's method kept inside the bracket (a bisection step whenever Newton would
	// leave it): a handful of iterations instead of the dozens plain bisection takes, which
	// matters because offer assembly computes several ПСК for every answer.
	lo, hi := -0.99, 10.0
	flo, _ := npv(flows, lo)
	fhi, _ := npv(flows, hi)
	if math.IsNaN(flo) || math.IsNaN(fhi) || flo < 0 || fhi > 0 {
		return 0, ErrNoPSK
	}
	i := 0.01 // 12% a year for monthly periods: near where credit products are
	for n := 0; n < 100; n++ {
		f, df := npv(flows, i)
		if f == 0 {
			break
		}
		if f > 0 {
			lo = i
		} else {
			hi = i
		}
		next := i - f/df
		if df >= 0 || math.IsNaN(next) || next <= lo || next >= hi {
			next = (lo + hi) / 2
		}
		if math.Abs(next-i) < 1e-15 || hi-lo < 1e-15 {
			i = next
			break
		}
		i = next
	}
	return math.Round(i*float64(periodsPerYear)*100*1000) / 1000, nil
}

// npv is Σ ДПk / ((1 + ek·i)(1 + i)^qk) and its derivative in i. The discount of consecutive
// periods is carried by multiplication rather than a power per flow.
func npv(flows []Flow, i float64) (v, dv float64) {
	base := 1 / (1 + i)
	q, disc := 0, 1.0 // disc = (1+i)^-q
	for _, f := range flows {
		switch {
		case f.Q == q:
		case f.Q == q+1:
			disc *= base
		default:
			disc = math.Pow(base, float64(f.Q))
		}
		q = f.Q
		frac := 1 + f.E*i
		t := float64(f.Amount) * disc / frac
		v += t
		dv -= t * (f.E/frac + float64(f.Q)/(1+i))
	}
	return v, dv
}

// LoanFlows returns the cash flows of an annuity loan of principal kopecks with fee kopecks
// paid by the borrower when the loan is granted: the principal out at period 0 less the fee,
// then the schedule's monthly payments.
func LoanFlows(principal, fee int64, annualRatePct float64, months int) []Flow {
	sched := Schedule(principal, annualRatePct, months)
	flows := make([]Flow, 0, len(sched)+1)
	flows = append(flows, Flow{Q: 0, Amount: -principal + fee})
	for k, p := range sched {
		flows = append(flows, Flow{Q: k + 1, Amount: p})
	}
	return flows
}
