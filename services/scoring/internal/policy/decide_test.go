package policy

import (
	"reflect"
	"sync"
	"testing"

	"github.com/loanflow/loanflow/contracts/events"
	"github.com/loanflow/loanflow/contracts/partnerapi"
	"github.com/loanflow/loanflow/pkg/loanmath"
	"github.com/loanflow/loanflow/services/scoring/internal/profile"
)

const rub = 100 // kopecks in a rouble

func months(n int) *int { return &n }

// client is a known client's profile with incomes and debts in roubles.
func client(income, debt int64, grade string) *profile.Profile {
	return &profile.Profile{MonthlyIncome: partnerapi.Money(income * rub), MonthlyDebtPayments: partnerapi.Money(debt * rub), BureauGrade: grade}
}

func salary(p *profile.Profile) *profile.Profile   { p.SalaryClient = true; return p }
func stopList(p *profile.Profile) *profile.Profile { p.StopList = true; return p }

func loan(amount int64, term int) Application {
	return Application{ProductType: partnerapi.ProductLoan, Amount: money(amount), Term: months(term)}
}

func card(amount *partnerapi.Money) Application {
	return Application{ProductType: partnerapi.ProductCreditCard, Amount: amount}
}

func rejected(grade, code string) Decision {
	return Decision{Outcome: events.OutcomeRejected, Grade: grade, ReasonCodes: []string{code}}
}

func approved(approval partnerapi.OfferDecision, grade string, maxAmount int64, codes ...string) Decision {
	return Decision{Outcome: events.OutcomeApproved, Approval: approval, Grade: grade, MaxAmount: partnerapi.Money(maxAmount), ReasonCodes: codes}
}

// referred is d sent to an officer, who may approve min..d.MaxAmount, with the default share.
func referred(d Decision, min int64, fallback events.Proposal) Decision {
	d.Referral = &Referral{MinAmount: partnerapi.Money(min), MaxAmount: d.MaxAmount, Fallback: fallback, DeadlineShare: 0.75}
	return d
}

// pays is d with the monthly payment left to the client under debt-to-income, in kopecks; a
// pre-approving fallback carries the same payment, since the client's means are the same.
func pays(payment int64, d Decision) Decision {
	d.MaxPayment = partnerapi.Money(payment)
	if d.Referral != nil && d.Referral.Fallback.Outcome == events.OutcomeApproved {
		d.Referral.Fallback.MaxPayment = d.MaxPayment
	}
	return d
}

func preFallback(grade string, maxAmount int64) events.Proposal {
	return events.Proposal{Outcome: events.OutcomeApproved, Approval: partnerapi.OfferPreApproved, Grade: grade, MaxAmount: partnerapi.Money(maxAmount)}
}

// affordable is the largest loan a monthly payment of available kopecks repays: the rule's
// formula, restated here so that the table shows where each number comes from.
func affordable(available int64, rate float64, term int) int64 {
	return loanmath.MaxPrincipal(available, rate, term)
}

func TestDecide(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	const (
		pre  = partnerapi.OfferPreApproved
		full = partnerapi.OfferFullApproved
	)
	// Grade C loan for 12 months whose affordable principal is exactly the 30 000 ₽ minimum:
	// the monthly payment left once debts are served is the annuity of 30 000 ₽.
	edgePayment := loanmath.Annuity(30_000*rub, 27.9, 12)
	edgeDebt := partnerapi.Money(50_000*rub - edgePayment) // 50% of a 100 000 ₽ income

	tests := []struct {
		name   string
		app    Application
		client *profile.Profile
		want   Decision
	}{
		// Stop list comes first, whatever else is wrong.
		{"stop list", loan(500_000*rub, 24), stopList(client(100_000, 0, "A")), rejected("A", ReasonStopList)},
		{"stop list before term", loan(500_000*rub, 1), stopList(client(100_000, 0, "A")), rejected("A", ReasonStopList)},
		{"stop list without income", card(nil), stopList(client(0, 0, "B")), rejected(GradeUnknown, ReasonStopList)},

		// Loan term: 3 to 84 months.
		{"term below range", loan(500_000*rub, 2), nil, rejected(GradeUnknown, ReasonTermOutOfRange)},
		{"term at minimum", loan(100_000*rub, 3), nil, approved(pre, GradeUnknown, 300_000*rub, ReasonUnknownClient)},
		{"term at maximum", loan(100_000*rub, 84), nil, approved(pre, GradeUnknown, 300_000*rub, ReasonUnknownClient)},
		{"term above range", loan(100_000*rub, 85), nil, rejected(GradeUnknown, ReasonTermOutOfRange)},
		{"term missing", Application{ProductType: partnerapi.ProductLoan, Amount: money(100_000 * rub)}, nil, rejected(GradeUnknown, ReasonTermOutOfRange)},
		{"term before amount", loan(1*rub, 100), client(100_000, 0, "A"), rejected("A", ReasonTermOutOfRange)},

		// Loan amount: at least 30 000 ₽.
		{"amount a kopeck below minimum", loan(30_000*rub-1, 12), client(100_000, 0, "A"), rejected("A", ReasonAmountBelowMinimum)},
		{"amount at minimum", loan(30_000*rub, 12), nil, approved(pre, GradeUnknown, 300_000*rub, ReasonUnknownClient)},
		{"amount missing", Application{ProductType: partnerapi.ProductLoan, Term: months(12)}, nil, rejected(GradeUnknown, ReasonAmountBelowMinimum)},

		// Unknown clients: pre-approved up to 300 000 ₽ (loan) or 50 000 ₽ (card).
		{"unknown client at limit", loan(300_000*rub, 24), nil, approved(pre, GradeUnknown, 300_000*rub, ReasonUnknownClient)},
		{"unknown client a kopeck above limit", loan(300_000*rub+1, 24), nil,
			approved(pre, GradeUnknown, 300_000*rub, ReasonUnknownClient, ReasonAmountReduced)},
		{"no income", loan(100_000*rub, 24), client(0, 10_000, "A"), approved(pre, GradeUnknown, 300_000*rub, ReasonProfileIncomplete)},
		{"no income, ineligible grade", loan(100_000*rub, 24), client(0, 0, "D"), approved(pre, GradeUnknown, 300_000*rub, ReasonProfileIncomplete)},
		{"unknown card", card(nil), nil, approved(pre, GradeUnknown, 50_000*rub, ReasonUnknownClient)},
		{"unknown card above limit", card(money(60_000 * rub)), nil, approved(pre, GradeUnknown, 50_000*rub, ReasonUnknownClient, ReasonAmountReduced)},
		{"unknown card below card minimum", card(money(100 * rub)), nil, approved(pre, GradeUnknown, 50_000*rub, ReasonUnknownClient)},
		{"card without income", card(nil), client(0, 0, "A"), approved(pre, GradeUnknown, 50_000*rub, ReasonProfileIncomplete)},

		// Grades the policy does not list.
		{"grade D loan", loan(100_000*rub, 24), client(100_000, 0, "D"), rejected("D", ReasonGradeNotEligible)},
		{"grade D card", card(nil), client(100_000, 0, "D"), rejected("D", ReasonGradeNotEligible)},
		{"grade missing", card(nil), client(100_000, 0, ""), rejected("", ReasonGradeNotEligible)},

		// Loans by debt-to-income: 100 000 ₽ × 50% − 10 000 ₽ debts leaves 40 000 ₽ a month.
		{"loan within affordability", loan(500_000*rub, 24), client(100_000, 10_000, "B"),
			pays(40_000*rub, approved(full, "B", affordable(40_000*rub, 19.9, 24), ReasonKnownClient, ReasonDTIWithinLimit))},
		{"loan reduced to affordability", loan(1_000_000*rub, 24), client(100_000, 10_000, "B"),
			pays(40_000*rub, approved(full, "B", affordable(40_000*rub, 19.9, 24), ReasonKnownClient, ReasonDTIWithinLimit, ReasonAmountReduced))},
		{"longer term affords more", loan(2_000_000*rub, 60), client(100_000, 10_000, "B"),
			pays(40_000*rub, approved(full, "B", affordable(40_000*rub, 19.9, 60), ReasonKnownClient, ReasonDTIWithinLimit, ReasonAmountReduced))},
		{"salary client gets 60%", loan(500_000*rub, 24), salary(client(100_000, 10_000, "B")),
			pays(50_000*rub, approved(full, "B", affordable(50_000*rub, 19.9, 24), ReasonKnownClient, ReasonDTIWithinLimit, ReasonSalaryClient))},
		{"loan capped by grade", loan(2_000_000*rub, 60), client(1_000_000, 0, "C"),
			pays(500_000*rub, approved(full, "C", 1_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonAmountReduced))},
		{"loan capped by policy", loan(6_000_000*rub, 84), client(2_000_000, 0, "A"),
			pays(1_000_000*rub, referred(approved(full, "A", 5_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonAmountReduced, ReasonReferAmount), 30_000*rub, preFallback("A", 300_000*rub)))},
		{"loan at the cap not reduced", loan(5_000_000*rub, 84), client(2_000_000, 0, "A"),
			pays(1_000_000*rub, referred(approved(full, "A", 5_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonReferAmount), 30_000*rub, preFallback("A", 300_000*rub)))},
		{"debts take the whole share", loan(100_000*rub, 24), client(50_000, 25_000, "A"), rejected("A", ReasonDTIExceeded)},
		{"debts above income", loan(100_000*rub, 24), client(50_000, 80_000, "A"), rejected("A", ReasonDTIExceeded)},
		{"loan affordability at minimum", loan(30_000*rub, 12), &profile.Profile{MonthlyIncome: 100_000 * rub, MonthlyDebtPayments: edgeDebt, BureauGrade: "C"},
			pays(edgePayment, approved(full, "C", affordable(edgePayment, 27.9, 12), ReasonKnownClient, ReasonDTIWithinLimit))},
		{"loan affordability a kopeck short", loan(30_000*rub, 12), &profile.Profile{MonthlyIncome: 100_000 * rub, MonthlyDebtPayments: edgeDebt + 1, BureauGrade: "C"},
			rejected("C", ReasonDTIExceeded)},

		// Cards: limit = what is left each month / 5%.
		{"card at minimum limit", card(nil), client(100_000, 49_500, "B"), pays(500*rub, approved(full, "B", 10_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"card a kopeck short", card(nil), &profile.Profile{MonthlyIncome: 100_000 * rub, MonthlyDebtPayments: 49_500*rub + 1, BureauGrade: "B"},
			rejected("B", ReasonDTIExceeded)},
		{"card by affordability", card(nil), client(100_000, 40_000, "A"), pays(10_000*rub, approved(full, "A", 200_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"card capped by grade", card(nil), client(100_000, 10_000, "B"), pays(40_000*rub, approved(full, "B", 500_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"card capped by policy", card(nil), client(1_000_000, 0, "A"), pays(500_000*rub, approved(full, "A", 1_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"card salary client reduced", card(money(200_000 * rub)), salary(client(100_000, 10_000, "C")),
			pays(50_000*rub, approved(full, "C", 150_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonSalaryClient, ReasonAmountReduced))},
		{"card request within limit", card(money(150_000 * rub)), client(100_000, 10_000, "C"),
			pays(40_000*rub, approved(full, "C", 150_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"card ignores a term", Application{ProductType: partnerapi.ProductCreditCard, Term: months(1000)}, nil,
			approved(pre, GradeUnknown, 50_000*rub, ReasonUnknownClient)},
		{"income beyond any real amount", card(nil), &profile.Profile{MonthlyIncome: 1 << 62, BureauGrade: "A"},
			pays(int64(partnerapi.MaxMoney)/2, approved(full, "A", 1_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},

		{"unknown product", Application{ProductType: "mortgage"}, nil, rejected(GradeUnknown, ReasonProductNotSupported)},
		{"no product", Application{}, client(100_000, 0, "A"), rejected("A", ReasonProductNotSupported)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.PolicyVersion = "2026-12.1"
			got := p.Decide(tt.app, tt.client)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDecideReferrals(t *testing.T) {
	const full = partnerapi.OfferFullApproved
	rejectFallback := events.Proposal{Outcome: events.OutcomeRejected}
	// Lines 22..25 of testYAML are the underwriting section.
	byGrade := edit(t, map[int]string{25: "  loan: {amount_above: 3000000, grades: [C]}"})
	cards := edit(t, map[int]string{24: "  fallback: reject", 25: "  credit_card: {limit_above: 500000}"})
	tests := []struct {
		name   string
		policy string
		app    Application
		client *profile.Profile
		want   Decision
	}{
		{"amount above the threshold", testYAML, loan(3_500_000*rub, 84), client(2_000_000, 0, "A"),
			pays(1_000_000*rub, referred(approved(full, "A", 5_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonReferAmount), 30_000*rub, preFallback("A", 300_000*rub)))},
		{"amount at the threshold decided by the policy", testYAML, loan(3_000_000*rub, 84), client(2_000_000, 0, "A"),
			pays(1_000_000*rub, approved(full, "A", 5_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"reduced approval: officer bounded by what the client qualifies for", testYAML, loan(4_000_000*rub, 84), client(60_000, 0, "B"),
			pays(30_000*rub, referred(approved(full, "B", affordable(30_000*rub, 19.9, 84), ReasonKnownClient, ReasonDTIWithinLimit, ReasonAmountReduced, ReasonReferAmount),
				30_000*rub, preFallback("B", 300_000*rub)))},
		{"unknown client is never referred", testYAML, loan(4_000_000*rub, 84), nil,
			approved(partnerapi.OfferPreApproved, GradeUnknown, 300_000*rub, ReasonUnknownClient, ReasonAmountReduced)},
		{"rejection is never referred", testYAML, loan(4_000_000*rub, 84), client(10_000, 9_000, "A"), rejected("A", ReasonDTIExceeded)},
		{"stop list is never referred", testYAML, loan(4_000_000*rub, 84), stopList(client(2_000_000, 0, "A")), rejected("A", ReasonStopList)},
		{"a card is not referred by the loan rule", testYAML, card(nil), client(2_000_000, 0, "A"),
			pays(1_000_000*rub, approved(full, "A", 1_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"grade rule", byGrade, loan(100_000*rub, 24), client(100_000, 0, "C"),
			pays(50_000*rub, referred(approved(full, "C", affordable(50_000*rub, 27.9, 24), ReasonKnownClient, ReasonDTIWithinLimit, ReasonReferGrade), 30_000*rub, preFallback("C", 300_000*rub)))},
		{"grade and amount", byGrade, loan(3_500_000*rub, 84), client(2_000_000, 0, "C"),
			pays(1_000_000*rub, referred(approved(full, "C", 1_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonAmountReduced, ReasonReferAmount, ReasonReferGrade), 30_000*rub, preFallback("C", 300_000*rub)))},
		{"grade not listed", byGrade, loan(100_000*rub, 24), client(100_000, 0, "B"),
			pays(50_000*rub, approved(full, "B", affordable(50_000*rub, 19.9, 24), ReasonKnownClient, ReasonDTIWithinLimit))},
		{"card limit above the threshold, reject fallback", cards, card(nil), client(2_000_000, 0, "A"),
			pays(1_000_000*rub, referred(approved(full, "A", 1_000_000*rub, ReasonKnownClient, ReasonDTIWithinLimit, ReasonReferAmount), 10_000*rub, rejectFallback))},
		{"card limit within the threshold", cards, card(nil), client(100_000, 40_000, "A"),
			pays(10_000*rub, approved(full, "A", 200_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))},
		{"pre-approve fallback never above the qualifying amount", byGrade, loan(80_000*rub, 24), client(20_000, 5_000, "C"),
			pays(5_000*rub, referred(approved(full, "C", affordable(5_000*rub, 27.9, 24), ReasonKnownClient, ReasonDTIWithinLimit, ReasonReferGrade),
				30_000*rub, preFallback("C", affordable(5_000*rub, 27.9, 24))))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			tt.want.PolicyVersion = "t-1"
			if got := p.Decide(tt.app, tt.client); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide =\n%+v %+v\nwant\n%+v %+v", got, got.Referral, tt.want, tt.want.Referral)
			}
		})
	}
}

func TestDecideWithoutSalaryBonus(t *testing.T) {
	p := mustParse(t, edit(t, map[int]string{15: "  salary_client_dti_bonus: 0"}))
	got := p.Decide(card(nil), salary(client(100_000, 40_000, "A")))
	// 100 000 × 50% − 40 000 = 10 000 ₽ a month, / 5% = 200 000 ₽: no bonus, no SALARY_CLIENT.
	want := pays(10_000*rub, approved(partnerapi.OfferFullApproved, "A", 200_000*rub, ReasonKnownClient, ReasonDTIWithinLimit))
	want.PolicyVersion = "t-1"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decide =\n%+v\nwant\n%+v", got, want)
	}
}

// sweep is a grid of applications and clients covering every rule.
func sweep() ([]Application, []*profile.Profile) {
	var apps []Application
	for _, amount := range []int64{29_999_99, 30_000_00, 250_000_00, 1_000_000_00, 7_000_000_00} {
		for _, term := range []int{2, 3, 12, 36, 84, 85} {
			apps = append(apps, loan(amount, term))
		}
		apps = append(apps, card(money(amount)))
	}
	apps = append(apps, card(nil))
	clients := []*profile.Profile{nil}
	for _, grade := range []string{"A", "B", "C", "D"} {
		for _, income := range []int64{0, 20_000, 60_000, 150_000, 3_000_000} {
			for _, debt := range []int64{0, 5_000, 30_000} {
				clients = append(clients, client(income, debt, grade), salary(client(income, debt, grade)))
			}
		}
	}
	clients = append(clients, stopList(client(150_000, 0, "A")))
	return apps, clients
}

func TestDecideInvariants(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	apps, clients := sweep()
	for _, app := range apps {
		for _, c := range clients {
			d := p.Decide(app, c)
			l := p.card.limits
			if app.ProductType == partnerapi.ProductLoan {
				l = p.loan.limits
			}
			switch d.Outcome {
			case events.OutcomeApproved:
				if d.MaxAmount < l.min || d.MaxAmount > l.max {
					t.Errorf("%+v %+v: MaxAmount %v outside the policy's %v..%v", app, c, d.MaxAmount, l.min, l.max)
				}
				if d.Approval != partnerapi.OfferPreApproved && d.Approval != partnerapi.OfferFullApproved {
					t.Errorf("%+v %+v: approved with approval %q", app, c, d.Approval)
				}
				// A full loan approval's payment fits in what debt-to-income leaves.
				if d.Approval == partnerapi.OfferFullApproved && app.ProductType == partnerapi.ProductLoan {
					share := l.maxDTI
					if c.SalaryClient {
						share += l.salaryDTI
					}
					available := mulShare(int64(c.MonthlyIncome), share) - int64(c.MonthlyDebtPayments)
					if pay := loanmath.Annuity(int64(d.MaxAmount), l.grades[c.BureauGrade].rate, *app.Term); pay > available {
						t.Errorf("%+v %+v: payment %d above the %d available", app, c, pay, available)
					}
					if int64(d.MaxPayment) != min(available, int64(partnerapi.MaxMoney)) {
						t.Errorf("%+v %+v: MaxPayment %v, want the %d available", app, c, d.MaxPayment, available)
					}
				}
				// Only a full approval has income to measure a payment against.
				if (d.Approval == partnerapi.OfferFullApproved) != (d.MaxPayment > 0) {
					t.Errorf("%+v %+v: %s with MaxPayment %v", app, c, d.Approval, d.MaxPayment)
				}
				if r := d.Referral; r != nil {
					if d.Approval != partnerapi.OfferFullApproved || c == nil || r.MinAmount != l.min || r.MaxAmount != d.MaxAmount {
						t.Errorf("%+v %+v: referral %+v of %+v", app, c, r, d)
					}
					if f := r.Fallback; f.Outcome == events.OutcomeApproved && (f.MaxAmount < l.min || f.MaxAmount > d.MaxAmount || f.Approval != partnerapi.OfferPreApproved) {
						t.Errorf("%+v %+v: fallback %+v outside %v..%v", app, c, f, l.min, d.MaxAmount)
					}
				}
			case events.OutcomeRejected:
				if d.Referral != nil {
					t.Errorf("%+v %+v: a rejection referred", app, c)
				}
				if d.MaxAmount != 0 || d.Approval != "" || len(d.ReasonCodes) != 1 {
					t.Errorf("%+v %+v: rejection %+v carries an amount, approval or several reasons", app, c, d)
				}
			default:
				t.Errorf("%+v %+v: outcome %q", app, c, d.Outcome)
			}
			if d.PolicyVersion != p.Version() || len(d.ReasonCodes) == 0 {
				t.Errorf("%+v %+v: decision %+v lacks version or reasons", app, c, d)
			}
		}
	}
}

func TestDecideIsDeterministic(t *testing.T) {
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	apps, clients := sweep()
	// A caller changing a returned decision must not change later ones.
	for _, app := range apps {
		for _, c := range clients {
			if d := p.Decide(app, c); len(d.ReasonCodes) > 0 {
				d.ReasonCodes[0] = "CHANGED"
			}
		}
	}
	// Decide again for the reference, then compare concurrent passes against it (-race).
	want := make([]Decision, 0, len(apps)*len(clients))
	for _, app := range apps {
		for _, c := range clients {
			want = append(want, p.Decide(app, c))
		}
	}
	for _, d := range want {
		for _, code := range d.ReasonCodes {
			if code == "CHANGED" {
				t.Fatal("a decision shares its reason codes with an earlier one")
			}
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			i := 0
			for _, app := range apps {
				for _, c := range clients {
					if got := p.Decide(app, c); !reflect.DeepEqual(got, want[i]) {
						t.Errorf("%+v %+v: Decide = %+v, earlier %+v", app, c, got, want[i])
					}
					i++
				}
			}
		})
	}
	wg.Wait()
}
