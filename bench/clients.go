package bench

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
)

// clientMix writes n known client profiles into path (the all-in-one imports them at start)
// and returns the phones the load cycles through: those clients, interleaved with unknown ones
// so that a share unknown of the applications comes from clients the bank has never seen.
// The list has an odd length so that a phone does not always ask for the same product (the
// generator alternates loans and cards).
func clientMix(path string, n int, unknown float64, seed uint64) ([]string, error) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := map[string]bool{}
	phone := func() string {
		for {
			p := fmt.Sprintf("9%09d", r.IntN(1_000_000_000))
			if !seen[p] {
				seen[p] = true
				return p
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "phone,monthly_income,monthly_debt_payments,bureau_grade,client_since,salary_client,stop_list")
	grades := []string{"A", "A", "B", "B", "B", "C", "C", "D"}
	known := make([]string, n)
	for i := range known {
		known[i] = phone()
		income := 40_000 + r.IntN(300_000)
		debt := r.IntN(income / 3)
		fmt.Fprintf(w, "%s,%d,%d,%s,20%02d-%02d-01,%t,%t\n", known[i], income, debt, grades[r.IntN(len(grades))],
			10+r.IntN(16), 1+r.IntN(12), r.IntN(10) < 3, r.IntN(50) == 0)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	unknown = min(max(unknown, 0), 0.95)
	total := int(float64(n) / (1 - unknown))
	if total%2 == 0 {
		total++
	}
	phones := append([]string(nil), known...)
	for len(phones) < total {
		phones = append(phones, phone())
	}
	r.Shuffle(len(phones), func(i, j int) { phones[i], phones[j] = phones[j], phones[i] })
	return phones, nil
}
