package loanmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Property tests: random loans from a fixed seed, so that a failure repeats. Amounts are whole
// kopecks from 10 000 ₽ to 5 000 000 ₽, rates 0.1–60% a year, terms 1–84 months.

const propertyRuns = 3000

func randomLoan(r *rand.Rand) (principal int64, rate float64, months int) {
	return 10_000_00 + r.Int64N(4_990_000_00), 0.1 + float64(r.IntN(59_900))/1000, 1 + r.IntN(84)
}

func TestPaymentGrowsWithAmountAndRateAndFallsWithTerm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range propertyRuns {
		p, rate, n := randomLoan(r)
		base := Annuity(p, rate, n)
		if base <= 0 {
			t.Fatalf("Annuity(%d, %v, %d) = %d, want > 0", p, rate, n, base)
		}
		more := p + 1 + r.Int64N(1_000_000_00)
		if got := Annuity(more, rate, n); got < base {
			t.Errorf("more principal pays less: Annuity(%d, %v, %d) = %d < Annuity(%d) = %d", more, rate, n, got, p, base)
		}
		if got := Annuity(p, rate+0.001+float64(r.IntN(20_000))/1000, n); got < base {
			t.Errorf("a higher rate pays less: %d < %d for %d over %d months at %v", got, base, p, n, rate)
		}
		if n < 84 {
			longer := n + 1 + r.IntN(84-n)
			if got := Annuity(p, rate, longer); got > base {
				t.Errorf("a longer term pays more each month: %d months %d > %d months %d (%d at %v)", longer, got, n, base, p, rate)
			}
		}
	}
}

func TestPSKAtLeastTheRate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range propertyRuns / 3 {
		p, rate, n := randomLoan(r)
		fee := int64(0)
		if r.IntN(2) == 0 {
			fee = r.Int64N(p / 20) // up to 5% of the amount
		}
		psk, err := PSK(LoanFlows(p, fee, rate, n), 12)
		if err != nil {
			t.Fatalf("PSK(%d, fee %d, %v, %d): %v", p, fee, rate, n, err)
		}
		// Payments are rounded to kopecks, which can move the ПСК by less than its own
		// rounding; fees only raise it.
		if psk < rate-0.001 {
			t.Errorf("ПСК %v below the rate %v for %d, fee %d, %d months", psk, rate, p, fee, n)
		}
		if fee == 0 && n > 1 && psk > rate+0.01 {
			t.Errorf("fee-free ПСК %v far from the rate %v for %d over %d months", psk, rate, p, n)
		}
	}
}

// pskByBisection is the plain definition: bisect the bracket to the last bit, a power per flow.
// PSK must agree with it; it is only slower.
func pskByBisection(flows []Flow, periodsPerYear int) float64 {
	f := func(i float64) float64 {
		var s float64
		for _, fl := range flows {
			s += float64(fl.Amount) / ((1 + fl.E*i) * math.Pow(1+i, float64(fl.Q)))
		}
		return s
	}
	lo, hi := -0.99, 10.0
	for n := 0; n < 200 && hi-lo > 1e-15; n++ {
		mid := (lo + hi) / 2
		if f(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Round((lo+hi)/2*float64(periodsPerYear)*100*1000) / 1000
}

func TestPSKAgreesWithBisection(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range propertyRuns / 3 {
		p, rate, n := randomLoan(r)
		fee := r.Int64N(p / 10)
		flows := LoanFlows(p, fee, rate, n)
		if r.IntN(4) == 0 { // a flow off the monthly grid, and a gap in the periods
			flows = append(flows, Flow{Q: n + 3, E: 0.5, Amount: 100_00})
		}
		got, err := PSK(flows, 12)
		if err != nil {
			t.Fatal(err)
		}
		if want := pskByBisection(flows, 12); got != want {
			t.Errorf("PSK(%d, fee %d, %v, %d months) = %v, bisection gives %v", p, fee, rate, n, got, want)
		}
	}
}

func BenchmarkPSK(b *testing.B) {
	flows := LoanFlows(1_000_000_00, 5_000_00, 19.9, 60)
	for b.Loop() {
		if _, err := PSK(flows, 12); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPSKByBisection(b *testing.B) {
	flows := LoanFlows(1_000_000_00, 5_000_00, 19.9, 60)
	for b.Loop() {
		pskByBisection(flows, 12)
	}
}
