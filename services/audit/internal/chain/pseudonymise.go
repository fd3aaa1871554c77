package chain

import (
	"bytes"
	"errors"

	"github.com/loanflow/loanflow/pkg/pseudonym"
)

// Pseudonymise removes clear phone numbers from a JSON payload before it is audited. Events
// should already carry none; this is the second line of defence, so that a stage that leaks
// one cannot write it into a stream that may not be altered for five years.
//
// The value of a key named phone or phone_number (in any letter case) becomes
// {"hash": h.Phone(v), "mask": pseudonym.Mask(v)}, v being the number's 10 digits when it is
// a Russian number, so that the hash joins the phone_hash of the events. Any other string
// that is a whole Russian number in clear (10 digits, 11 digits starting with 7 or 8, or +7
// and 10 digits) becomes the mask of its 10 digits. Nothing else changes in value; the result
// is in canonical form (see Canonical).
func Pseudonymise(payload []byte, h *pseudonym.Hasher) ([]byte, error) {
	if h == nil {
		return nil, errors.New("chain: pseudonymise: no hasher")
	}
	e := encoders.Get().(*encoder)
	defer func() {
		e.hasher = nil
		encoders.Put(e)
	}()
	e.hasher = h
	p, err := e.canonicalPayload(payload)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// isPhoneKey reports whether an object key names a phone number.
func isPhoneKey(k []byte) bool {
	return bytes.EqualFold(k, []byte("phone")) || bytes.EqualFold(k, []byte("phone_number"))
}

// appendStringValue appends the string value v, pseudonymised when the encoder has a hasher.
func (e *encoder) appendStringValue(dst, v []byte, phone bool) []byte {
	switch {
	case e.hasher == nil:
		return appendString(dst, v)
	case phone:
		return e.appendPhone(dst, v)
	}
	if ten, ok := russianPhone(v); ok {
		return appendString(dst, pseudonym.Mask(string(ten)))
	}
	return appendString(dst, v)
}

// appendPhone appends the {"hash", "mask"} object that stands for the phone number v.
func (e *encoder) appendPhone(dst, v []byte) []byte {
	if ten, ok := russianPhone(stripPhoneFormatting(v)); ok {
		v = ten
	}
	phone := string(v)
	dst = append(dst, `{"hash":`...)
	dst = appendString(dst, e.hasher.Phone(phone))
	dst = append(dst, `,"mask":`...)
	dst = appendString(dst, pseudonym.Mask(phone))
	return append(dst, '}')
}

// russianPhone returns the 10 digits of v when v is a Russian phone number as Yandex sends it
// (10 digits) or with its country prefix (7 or 8 and 10 digits, +7 and 10 digits).
func russianPhone(v []byte) ([]byte, bool) {
	switch {
	case len(v) == 10 && allDigits(v):
		return v, true
	case len(v) == 11 && (v[0] == '7' || v[0] == '8') && allDigits(v):
		return v[1:], true
	case len(v) == 12 && v[0] == '+' && v[1] == '7' && allDigits(v[2:]):
		return v[2:], true
	}
	return nil, false
}

// stripPhoneFormatting drops the spaces, brackets and dashes people write phone numbers with,
// for values that are known to be phones; a copy is made only when there is something to drop.
func stripPhoneFormatting(v []byte) []byte {
	if bytes.IndexAny(v, " ()-") < 0 {
		return v
	}
	out := make([]byte, 0, len(v))
	for _, c := range v {
		switch c {
		case ' ', '(', ')', '-':
		default:
			out = append(out, c)
		}
	}
	return out
}

func allDigits(v []byte) bool {
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
