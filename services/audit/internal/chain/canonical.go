package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/loanflow/loanflow/pkg/pseudonym"
)

// maxDepth bounds JSON nesting as encoding/json does, so that a hostile payload cannot
// exhaust the stack while every payload encoding/json accepts still seals.
const maxDepth = 10000

// canonicalTime is RFC 3339 in UTC with all nine fractional digits: fixed width, so one
// instant has exactly one spelling.
const canonicalTime = "2006-01-02T15:04:05.000000000Z"

// errNotCanonicalisable wraps every reason a payload or record has no canonical encoding.
var errNotCanonicalisable = errors.New("no canonical encoding")

// member is one "key":value pair of an object being encoded: its decoded key in
// encoder.keys and its encoded bytes in the output, so that members can be reordered by key
// after the object is read.
type member struct {
	keyOff, keyLen int
	start, end     int
}

// encoder produces canonical encodings. Its buffers are reused across calls, which is what
// keeps sealing and verification free of per-record allocations; it is not safe for
// concurrent use.
type encoder struct {
	buf     []byte   // the record's canonical encoding
	members []member // members of the objects being read, innermost last
	keys    []byte   // decoded keys of those members
	tmp     []byte   // scratch for reordering an object's members
	str     []byte   // scratch for strings with escapes
	hasher  *pseudonym.Hasher
}

// sum returns the hex SHA-256 of r's canonical encoding (every field but Hash) into out.
func (e *encoder) sum(r *Record, out *[64]byte) error {
	b, err := e.appendRecord(e.buf[:0], r)
	if err != nil {
		return err
	}
	e.buf = b
	s := sha256.Sum256(b)
	hex.Encode(out[:], s[:])
	return nil
}

// appendRecord appends r's canonical encoding: a JSON object with the fields in a fixed
// order (not sorted), strings escaped minimally, the payload in canonical form, and Hash left
// out because it is what the encoding is hashed into.
func (e *encoder) appendRecord(dst []byte, r *Record) ([]byte, error) {
	var err error
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"time":`...)
	if dst, err = appendTime(dst, r.Time); err != nil {
		return nil, err
	}
	fields := [...]struct {
		name, value string
	}{
		{`,"event_type":`, r.EventType},
		{`,"search_id":`, r.SearchID},
		{`,"stage":`, r.Stage},
		{`,"correlation_id":`, r.CorrelationID},
	}
	for _, f := range fields {
		dst = append(dst, f.name...)
		if dst, err = appendGoString(dst, f.name[2:len(f.name)-2], f.value); err != nil {
			return nil, err
		}
	}
	dst = append(dst, `,"source_seq":`...)
	dst = strconv.AppendUint(dst, r.SourceSeq, 10)
	dst = append(dst, `,"payload":`...)
	if dst, err = e.appendPayload(dst, r.Payload); err != nil {
		return nil, err
	}
	dst = append(dst, `,"prev_hash":`...)
	if dst, err = appendGoString(dst, "prev_hash", r.PrevHash); err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

func appendTime(dst []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: time %v outside years 0-9999", errNotCanonicalisable, t)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, canonicalTime)
	return append(dst, '"'), nil
}

// appendGoString rejects invalid UTF-8 rather than repairing it as encoding/json does: a
// repaired field would no longer match the hash once the record has been through JSON.
func appendGoString(dst []byte, field, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: %s is not valid UTF-8", errNotCanonicalisable, field)
	}
	return appendString(dst, s), nil
}

// appendPayload appends the canonical form of a JSON payload; an empty payload is null, as
// encoding/json writes an empty json.RawMessage.
func (e *encoder) appendPayload(dst []byte, p []byte) ([]byte, error) {
	if len(p) == 0 {
		return append(dst, "null"...), nil
	}
	dst, i, err := e.value(dst, p, skipSpace(p, 0), 0, false)
	if err != nil {
		return nil, err
	}
	if i = skipSpace(p, i); i != len(p) {
		return nil, syntaxErr(p, i, "data after the JSON value")
	}
	return dst, nil
}

// canonicalPayload returns the canonical form of p in a new slice.
func (e *encoder) canonicalPayload(p []byte) ([]byte, error) {
	out, err := e.appendPayload(e.buf[:0], p)
	if err != nil {
		return nil, err
	}
	e.buf = out
	return bytes.Clone(out), nil
}

func skipSpace(s []byte, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func syntaxErr(s []byte, i int, what string) error {
	if i >= len(s) {
		return fmt.Errorf("%w: invalid JSON: %s at end of input", errNotCanonicalisable, what)
	}
	return fmt.Errorf("%w: invalid JSON: %s at offset %d", errNotCanonicalisable, what, i)
}

// value appends the canonical form of the JSON value at s[i] and returns the offset after it.
// phone says the value belongs to a phone key; it matters only when pseudonymising.
func (e *encoder) value(dst, s []byte, i, depth int, phone bool) ([]byte, int, error) {
	if i >= len(s) {
		return nil, i, syntaxErr(s, i, "missing value")
	}
	switch c := s[i]; {
	case c == '{':
		return e.object(dst, s, i, depth+1)
	case c == '[':
		return e.array(dst, s, i, depth+1)
	case c == '"':
		v, j, err := e.readString(s, i)
		if err != nil {
			return nil, i, err
		}
		return e.appendStringValue(dst, v, phone), j, nil
	case c == '-' || c >= '0' && c <= '9':
		j, digitsOnly, err := scanNumber(s, i)
		if err != nil {
			return nil, i, err
		}
		if phone && digitsOnly && e.hasher != nil {
			// A phone key holding a number is still a phone: a JSON number is no disguise.
			return e.appendPhone(dst, s[i:j]), j, nil
		}
		return append(dst, s[i:j]...), j, nil
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(s[i:], []byte(lit)) {
				return append(dst, lit...), i + len(lit), nil
			}
		}
		return nil, i, syntaxErr(s, i, "invalid character")
	}
}

func (e *encoder) object(dst, s []byte, i, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return nil, i, syntaxErr(s, i, "nesting too deep")
	}
	open := len(dst)
	base, keysBase := len(e.members), len(e.keys)
	defer func() { e.members, e.keys = e.members[:base], e.keys[:keysBase] }()
	dst = append(dst, '{')
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return append(dst, '}'), i + 1, nil
	}
	sorted := true
	for {
		if i >= len(s) || s[i] != '"' {
			return nil, i, syntaxErr(s, i, "expected object key")
		}
		k, j, err := e.readString(s, i)
		if err != nil {
			return nil, i, err
		}
		m := member{keyOff: len(e.keys), keyLen: len(k)}
		e.keys = append(e.keys, k...)
		if n := len(e.members); n > base {
			switch bytes.Compare(e.key(e.members[n-1]), e.key(m)) {
			case 0:
				return nil, i, fmt.Errorf("%w: duplicate key %q", errNotCanonicalisable, k)
			case 1:
				sorted = false
			}
		}
		if i = skipSpace(s, j); i >= len(s) || s[i] != ':' {
			return nil, i, syntaxErr(s, i, "expected ':'")
		}
		if len(e.members) > base {
			dst = append(dst, ',')
		}
		m.start = len(dst)
		dst = appendString(dst, e.key(m))
		dst = append(dst, ':')
		if dst, i, err = e.value(dst, s, skipSpace(s, i+1), depth, e.hasher != nil && isPhoneKey(e.key(m))); err != nil {
			return nil, i, err
		}
		m.end = len(dst)
		e.members = append(e.members, m)
		if i = skipSpace(s, i); i >= len(s) {
			return nil, i, syntaxErr(s, i, "unterminated object")
		}
		if s[i] == '}' {
			i++
			break
		}
		if s[i] != ',' {
			return nil, i, syntaxErr(s, i, "expected ',' or '}'")
		}
		i = skipSpace(s, i+1)
	}
	if sorted {
		// The common case when verifying: Seal stored the payload canonical already.
		return append(dst, '}'), i, nil
	}
	ms := e.members[base:]
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(e.key(a), e.key(b)) })
	for n := 1; n < len(ms); n++ {
		if bytes.Equal(e.key(ms[n-1]), e.key(ms[n])) {
			return nil, i, fmt.Errorf("%w: duplicate key %q", errNotCanonicalisable, e.key(ms[n]))
		}
	}
	e.tmp = append(e.tmp[:0], dst[open:]...)
	dst = append(dst[:open], '{')
	for n, m := range ms {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.tmp[m.start-open:m.end-open]...)
	}
	return append(dst, '}'), i, nil
}

func (e *encoder) key(m member) []byte { return e.keys[m.keyOff : m.keyOff+m.keyLen] }

func (e *encoder) array(dst, s []byte, i, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return nil, i, syntaxErr(s, i, "nesting too deep")
	}
	dst = append(dst, '[')
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return append(dst, ']'), i + 1, nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, i, err = e.value(dst, s, i, depth, false); err != nil {
			return nil, i, err
		}
		if i = skipSpace(s, i); i >= len(s) {
			return nil, i, syntaxErr(s, i, "unterminated array")
		}
		if s[i] == ']' {
			return append(dst, ']'), i + 1, nil
		}
		if s[i] != ',' {
			return nil, i, syntaxErr(s, i, "expected ',' or ']'")
		}
		i = skipSpace(s, i+1)
	}
}

// scanNumber checks the JSON number grammar and returns the offset after the number. Numbers
// are kept as written: amounts carry their two decimals on the wire, and rewriting them
// would change what the record says.
func scanNumber(s []byte, i int) (end int, digitsOnly bool, err error) {
	start := i
	if s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return 0, false, syntaxErr(s, i, "invalid number")
	}
	digitsOnly = s[start] != '-'
	if i < len(s) && s[i] == '.' {
		i++
		digitsOnly = false
		if digits() == 0 {
			return 0, false, syntaxErr(s, i, "invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		digitsOnly = false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false, syntaxErr(s, i, "invalid number")
		}
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		// A leading zero followed by more digits.
		return 0, false, syntaxErr(s, i, "invalid number")
	}
	return i, digitsOnly, nil
}

// readString decodes the JSON string at s[i] and returns its value and the offset after it.
// The value aliases s when the string has no escapes and e.str otherwise, so it is valid only
// until the next readString.
func (e *encoder) readString(s []byte, i int) ([]byte, int, error) {
	start := i + 1
	j := start
	for j < len(s) {
		c := s[j]
		if c == '"' {
			if !utf8.Valid(s[start:j]) {
				return nil, j, fmt.Errorf("%w: string at offset %d is not valid UTF-8", errNotCanonicalisable, i)
			}
			return s[start:j], j + 1, nil
		}
		if c == '\\' {
			return e.readEscaped(s, i, j)
		}
		if c < 0x20 {
			return nil, j, syntaxErr(s, j, "control character in string")
		}
		j++
	}
	return nil, j, syntaxErr(s, j, "unterminated string")
}

// readEscaped decodes the string at s[i] whose first escape is at s[j].
func (e *encoder) readEscaped(s []byte, i, j int) ([]byte, int, error) {
	out := append(e.str[:0], s[i+1:j]...)
	for j < len(s) {
		c := s[j]
		switch {
		case c == '"':
			e.str = out
			if !utf8.Valid(out) {
				return nil, j, fmt.Errorf("%w: string at offset %d is not valid UTF-8", errNotCanonicalisable, i)
			}
			return out, j + 1, nil
		case c < 0x20:
			return nil, j, syntaxErr(s, j, "control character in string")
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(s) {
			break
		}
		esc := s[j+1]
		j += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s, j)
			if !ok {
				return nil, j, syntaxErr(s, j, "invalid \\u escape")
			}
			j += 4
			if utf16.IsSurrogate(r) {
				// A surrogate must pair with the next escape; a lone one has no UTF-8 form.
				r2, ok := rune(0), false
				if j+1 < len(s) && s[j] == '\\' && s[j+1] == 'u' {
					r2, ok = hex4(s, j+2)
				}
				if !ok {
					return nil, j, syntaxErr(s, j, "lone surrogate in string")
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, j, syntaxErr(s, j, "invalid surrogate pair in string")
				}
				j += 6
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, j, syntaxErr(s, j-1, "invalid escape")
		}
	}
	e.str = out
	return nil, j, syntaxErr(s, j, "unterminated string")
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendString appends s (valid UTF-8) as a canonical JSON string: only '"', '\\' and control
// characters are escaped, with the short escapes where JSON has them, as RFC 8785 does.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		last = i + 1
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}
