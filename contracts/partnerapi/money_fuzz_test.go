package partnerapi

import "testing"

// FuzzMoney parses arbitrary amounts: no panic, and whatever parses prints back to itself.
func FuzzMoney(f *testing.F) {
	for _, s := range []string{"500000", "500000.00", "600000.01", "1e3", "1.5E+2", "0.001", "-1", "1e400", "00012.10", "1.", ".5", "12e-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMoney(s)
		if err != nil {
			return
		}
		if m > MaxMoney || m < -MaxMoney {
			t.Fatalf("%q parsed out of range: %v", s, m)
		}
		back, err := ParseMoney(m.String())
		if err != nil || back != m {
			t.Fatalf("%q → %v → %v, %v", s, m, back, err)
		}
	})
}
