// Package profile is what the bank knows about a client for scoring: the Profile stored in the
// KV bucket "clients" under the keyed hash of the phone number, and the reader of the client
// files that fill that bucket. The phone number itself is never stored.
package profile

import (
	"fmt"
	"strings"
	"time"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// DateLayout is the layout of ClientSince: a calendar date, YYYY-MM-DD.
const DateLayout = "2006-01-02"

// Profile is one client's data as scoring reads it. It holds no phone number: the bucket key is
// its keyed hash.
type Profile struct {
	// MonthlyIncome is the confirmed monthly income; zero means the bank does not know it.
	MonthlyIncome partnerapi.Money `json:"monthly_income"`
	// MonthlyDebtPayments is what the client already pays on debts every month.
	MonthlyDebtPayments partnerapi.Money `json:"monthly_debt_payments"`
	// BureauGrade is the credit bureau's risk grade, A (best) to D.
	BureauGrade string `json:"bureau_grade"`
	// ClientSince is the date the client joined the bank, YYYY-MM-DD; empty when unknown.
	ClientSince string `json:"client_since,omitempty"`
	// SalaryClient says the client's salary is paid into the bank.
	SalaryClient bool `json:"salary_client"`
	// StopList says the bank must not lend to the client at all.
	StopList bool `json:"stop_list"`
}

// ValidGrade reports whether g is a bureau grade: A, B, C or D.
func ValidGrade(g string) bool { return g == "A" || g == "B" || g == "C" || g == "D" }

// Validate checks the rules a stored profile must meet, so that a value read back from the
// bucket is checked the same way as one read from a client file.
func (p Profile) Validate() error {
	problems := p.problems()
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("profile: %s", strings.Join(problems, "; "))
}

// problems lists the broken rules, naming fields and never their values.
func (p Profile) problems() []string {
	var out []string
	if p.MonthlyIncome < 0 {
		out = append(out, "monthly_income must not be negative")
	}
	if p.MonthlyDebtPayments < 0 {
		out = append(out, "monthly_debt_payments must not be negative")
	}
	if !ValidGrade(p.BureauGrade) {
		out = append(out, "bureau_grade must be A, B, C or D")
	}
	if p.ClientSince != "" {
		if _, err := time.Parse(DateLayout, p.ClientSince); err != nil {
			out = append(out, "client_since must be a date YYYY-MM-DD")
		}
	}
	return out
}
