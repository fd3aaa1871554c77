package loanmath

import (
	"math"
	"testing"
)

func TestAnnuity(t *testing.T) {
	tests := []struct {
		name      string
		principal int64
		rate      float64
		months    int
		want      int64
	}{
		// 100 000 ₽ at 12% for 12 months: 100000 × 0.01 / (1 − 1.01^−12) = 8884.8788… ₽.
		{"textbook 12 percent", 100_000_00, 12, 12, 8884_88},
		// 1 000 000 ₽ at 24% for 60 months: r = 0.02, payment 28767.9658… ₽.
		{"large loan", 1_000_000_00, 24, 60, 28767_97},
		{"zero rate divides evenly", 120_000_00, 0, 12, 10_000_00},
		{"one month repays principal and interest", 100_000_00, 12, 1, 101_000_00},
		{"no principal", 0, 12, 12, 0},
		{"no term", 100_000_00, 12, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Annuity(tt.principal, tt.rate, tt.months); got != tt.want {
				t.Errorf("Annuity(%d, %v, %d) = %d, want %d", tt.principal, tt.rate, tt.months, got, tt.want)
			}
		})
	}
}

func TestMaxPrincipalIsLargestAffordable(t *testing.T) {
	tests := []struct {
		payment int64
		rate    float64
		months  int
	}{
		{8884_88, 12, 12},
		{30_000_00, 19.9, 60},
		{5_000_00, 0, 24},
		{1, 35, 84},
	}
	for _, tt := range tests {
		p := MaxPrincipal(tt.payment, tt.rate, tt.months)
		if got := Annuity(p, tt.rate, tt.months); got > tt.payment {
			t.Errorf("MaxPrincipal(%d,%v,%d) = %d pays %d, over the limit", tt.payment, tt.rate, tt.months, p, got)
		}
		if got := Annuity(p+1, tt.rate, tt.months); got <= tt.payment {
			t.Errorf("MaxPrincipal(%d,%v,%d) = %d, but %d still pays %d", tt.payment, tt.rate, tt.months, p, p+1, got)
		}
	}
}

func TestScheduleRepaysPrincipalExactly(t *testing.T) {
	for _, tt := range []struct {
		principal int64
		rate      float64
		months    int
	}{{100_000_00, 12, 12}, {600_000_01, 27.9, 60}, {30_000_00, 0, 7}} {
		sched := Schedule(tt.principal, tt.rate, tt.months)
		if len(sched) != tt.months {
			t.Fatalf("len = %d, want %d", len(sched), tt.months)
		}
		// Replaying the schedule against the balance must end at exactly zero.
		r := tt.rate / 1200
		balance := tt.principal
		for _, p := range sched {
			balance += roundHalfUp(float64(balance)*r) - p
		}
		if balance != 0 {
			t.Errorf("Schedule(%d,%v,%d) leaves %d kopecks", tt.principal, tt.rate, tt.months, balance)
		}
	}
}

func TestPSK(t *testing.T) {
	tests := []struct {
		name  string
		flows []Flow
		want  float64
	}{
		// With no fees and monthly periods the ПСК is the nominal rate.
		{"no fees equals nominal 12", LoanFlows(100_000_00, 0, 12, 12), 12},
		{"no fees equals nominal 19.9", LoanFlows(300_000_00, 0, 19.9, 36), 19.9},
		{"no fees equals nominal 9.9 long", LoanFlows(2_000_000_00, 0, 9.9, 84), 9.9},
		// One bullet repayment a year later, monthly base period: (1+i)^12 = 1.12, so
		// i = 1.12^(1/12) − 1 and ПСК = 12·i·100 = 11.386…%.
		{"bullet after a year", []Flow{{Q: 0, Amount: -100_000_00}, {Q: 12, Amount: 112_000_00}}, 11.387},
		// Half a period on top of whole periods: −100 now, +101 after one period and a half
		// at i: (1 + 0.5i)(1+i) = 1.01 → i = 0.0066519…, ПСК = 7.982%.
		{"fraction of a period", []Flow{{Q: 0, Amount: -100_00}, {Q: 1, E: 0.5, Amount: 101_00}}, 7.982},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PSK(tt.flows, 12)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 0.0005 {
				t.Errorf("PSK = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPSKFeeRaisesCost(t *testing.T) {
	base, err := PSK(LoanFlows(100_000_00, 0, 12, 12), 12)
	if err != nil {
		t.Fatal(err)
	}
	withFee, err := PSK(LoanFlows(100_000_00, 2_000_00, 12, 12), 12)
	if err != nil {
		t.Fatal(err)
	}
	// A 2% fee on a one-year loan adds roughly 3.7 points: check the direction and size.
	if withFee <= base+3 || withFee >= base+5 {
		t.Errorf("PSK with a 2%% fee = %v, base %v: want 3 to 5 points more", withFee, base)
	}
}

func TestPSKRejectsFlowsWithoutSolution(t *testing.T) {
	for _, flows := range [][]Flow{
		nil,
		{{Q: 0, Amount: -100}}, // money out, never back
		{{Q: 0, Amount: 100}, {Q: 1, Amount: 100}}, // never changes sign
	} {
		if _, err := PSK(flows, 12); err == nil {
			t.Errorf("PSK(%v) succeeded, want ErrNoPSK", flows)
		}
	}
}
