package partnerapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Money is an amount in kopecks. On the wire it is a JSON number of roubles with exactly two
// decimals (600000.01), so that no amount passes through a binary float.
type Money int64

// String formats m as roubles with two decimals, the form it has on the wire.
func (m Money) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// Float returns m in roubles as a float64, for arithmetic that is rounded back to kopecks.
func (m Money) Float() float64 { return float64(m) / 100 }

// MarshalJSON writes m as a number of roubles with two decimals.
func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalJSON reads a JSON number of roubles with at most two decimals.
func (m *Money) UnmarshalJSON(b []byte) error {
	v, err := ParseMoney(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MaxMoney bounds every amount the API accepts: ten billion roubles, far above any credit
// product and far below int64 overflow in payment arithmetic.
const MaxMoney Money = 10_000_000_000_00

// Errors of ParseMoney, told apart by the validator to word its messages.
var (
	ErrMoneySyntax    = errors.New("not a decimal number")
	ErrMoneyPrecision = errors.New("more than two decimals")
	ErrMoneyRange     = errors.New("out of range")
)

// ParseMoney parses a plain decimal number of roubles (a JSON number literal: digits, an
// optional fraction, an optional exponent) into kopecks, exactly.
func ParseMoney(s string) (Money, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || i == 0 {
			return 0, ErrMoneySyntax
		}
		if e > 20 || e < -20 {
			return 0, ErrMoneyRange
		}
		mant, exp = s[:i], e
	}
	intPart, frac, hasDot := strings.Cut(mant, ".")
	if intPart == "" || !allDigits(intPart) || (hasDot && (frac == "" || !allDigits(frac))) {
		return 0, ErrMoneySyntax
	}
	// Shift the decimal point by exp, then require at most two fractional digits.
	digits := intPart + frac
	point := len(intPart) + exp
	for point > len(digits) {
		digits += "0"
	}
	for point < 0 {
		digits = "0" + digits
		point++
	}
	whole, fr := digits[:point], strings.TrimRight(digits[point:], "0")
	if len(fr) > 2 {
		return 0, ErrMoneyPrecision
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 12 {
		return 0, ErrMoneyRange
	}
	var w int64
	if whole != "" {
		w, _ = strconv.ParseInt(whole, 10, 64)
	}
	fr += strings.Repeat("0", 2-len(fr))
	k, _ := strconv.ParseInt(fr, 10, 64)
	v := Money(w*100 + k)
	if v > MaxMoney {
		return 0, ErrMoneyRange
	}
	if neg {
		v = -v
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
