package profile

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestProfileJSON(t *testing.T) {
	p := Profile{MonthlyIncome: 85_000_50, MonthlyDebtPayments: 12_000_00, BureauGrade: "B", ClientSince: "2019-04-01", SalaryClient: true}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"monthly_income":85000.50,"monthly_debt_payments":12000.00,"bureau_grade":"B","client_since":"2019-04-01","salary_client":true,"stop_list":false}`
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var back Profile
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip = %+v, want %+v", back, p)
	}
	// Without a join date the key is left out.
	b, _ = json.Marshal(Profile{BureauGrade: "A"})
	if strings.Contains(string(b), "client_since") {
		t.Errorf("Marshal = %s, want no client_since", b)
	}
}

func TestProfileValidate(t *testing.T) {
	valid := Profile{MonthlyIncome: 1, BureauGrade: "A", ClientSince: "2024-02-29"}
	tests := []struct {
		name string
		edit func(*Profile)
		want string // "" for valid
	}{
		{"valid", func(*Profile) {}, ""},
		{"no income and no date", func(p *Profile) { p.MonthlyIncome, p.ClientSince = 0, "" }, ""},
		{"negative income", func(p *Profile) { p.MonthlyIncome = -1 }, "profile: monthly_income must not be negative"},
		{"negative debt", func(p *Profile) { p.MonthlyDebtPayments = -1 }, "profile: monthly_debt_payments must not be negative"},
		{"lower-case grade", func(p *Profile) { p.BureauGrade = "a" }, "profile: bureau_grade must be A, B, C or D"},
		{"grade E", func(p *Profile) { p.BureauGrade = "E" }, "profile: bureau_grade must be A, B, C or D"},
		{"no grade", func(p *Profile) { p.BureauGrade = "" }, "profile: bureau_grade must be A, B, C or D"},
		{"not a calendar date", func(p *Profile) { p.ClientSince = "2023-02-29" }, "profile: client_since must be a date YYYY-MM-DD"},
		{"other date layout", func(p *Profile) { p.ClientSince = "01.02.2023" }, "profile: client_since must be a date YYYY-MM-DD"},
		{"several problems", func(p *Profile) { p.MonthlyIncome, p.BureauGrade = -1, "X" },
			"profile: monthly_income must not be negative; bureau_grade must be A, B, C or D"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid
			tt.edit(&p)
			err := p.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}
