package chain

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// ParseRecord decodes a record as stored in the AUDIT stream (the JSON encoding of Record).
// It does what json.Unmarshal does without reflection, for replays that verify millions of
// records (see BenchmarkVerify), and is stricter: an unknown or repeated field is an error, since the hash would
// not cover it. Whether the payload has a canonical form is left to Verify.
func ParseRecord(data []byte) (Record, error) {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	var r Record
	if err := e.parseRecord(data, &r); err != nil {
		return Record{}, fmt.Errorf("chain: parse record: %w", err)
	}
	return r, nil
}

// One bit per field of Record, to find a repeated field.
const (
	fSeq = 1 << iota
	fTime
	fEventType
	fSearchID
	fStage
	fCorrelationID
	fSourceSeq
	fPayload
	fPrevHash
	fHash
)

func (e *encoder) parseRecord(s []byte, r *Record) error {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return syntaxErr(s, i, "expected '{'")
	}
	seen := 0
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		i++
	} else {
		for {
			if i >= len(s) || s[i] != '"' {
				return syntaxErr(s, i, "expected field name")
			}
			// Field names hold no escapes in what json.Marshal writes; a name with one is
			// unknown below.
			k, j, err := e.readString(s, i)
			if err != nil {
				return err
			}
			bit, known := fieldBit(k)
			if !known {
				return fmt.Errorf("unknown field %q", k)
			}
			if seen&bit != 0 {
				return fmt.Errorf("repeated field %q", k)
			}
			seen |= bit
			if i = skipSpace(s, j); i >= len(s) || s[i] != ':' {
				return syntaxErr(s, i, "expected ':'")
			}
			if i, err = e.parseField(s, skipSpace(s, i+1), bit, r); err != nil {
				return err
			}
			if i = skipSpace(s, i); i >= len(s) {
				return syntaxErr(s, i, "unterminated record")
			}
			if s[i] == '}' {
				i++
				break
			}
			if s[i] != ',' {
				return syntaxErr(s, i, "expected ',' or '}'")
			}
			i = skipSpace(s, i+1)
		}
	}
	if i = skipSpace(s, i); i != len(s) {
		return syntaxErr(s, i, "data after the record")
	}
	return nil
}

func fieldBit(k []byte) (int, bool) {
	switch string(k) { // no allocation: the compiler switches on the bytes
	case "seq":
		return fSeq, true
	case "time":
		return fTime, true
	case "event_type":
		return fEventType, true
	case "search_id":
		return fSearchID, true
	case "stage":
		return fStage, true
	case "correlation_id":
		return fCorrelationID, true
	case "source_seq":
		return fSourceSeq, true
	case "payload":
		return fPayload, true
	case "prev_hash":
		return fPrevHash, true
	case "hash":
		return fHash, true
	}
	return 0, false
}

// parseField decodes the value at s[i] into the field bit names and returns the offset after it.
func (e *encoder) parseField(s []byte, i, bit int, r *Record) (int, error) {
	switch bit {
	case fSeq, fSourceSeq:
		j, digitsOnly, err := scanNumberAt(s, i)
		if err != nil {
			return i, err
		}
		if !digitsOnly {
			return i, syntaxErr(s, i, "sequence is not an unsigned integer")
		}
		n, err := strconv.ParseUint(string(s[i:j]), 10, 64)
		if err != nil {
			return i, syntaxErr(s, i, "sequence out of range")
		}
		if bit == fSeq {
			r.Seq = n
		} else {
			r.SourceSeq = n
		}
		return j, nil
	case fPayload:
		j, err := skipValue(s, i, 0)
		if err != nil {
			return i, err
		}
		r.Payload = bytes.Clone(s[i:j])
		return j, nil
	}
	if i >= len(s) || s[i] != '"' {
		return i, syntaxErr(s, i, "expected a string")
	}
	v, j, err := e.readString(s, i)
	if err != nil {
		return i, err
	}
	switch bit {
	case fTime:
		if r.Time, err = time.Parse(time.RFC3339Nano, string(v)); err != nil {
			return i, fmt.Errorf("time: %w", err)
		}
	case fEventType:
		r.EventType = string(v)
	case fSearchID:
		r.SearchID = string(v)
	case fStage:
		r.Stage = string(v)
	case fCorrelationID:
		r.CorrelationID = string(v)
	case fPrevHash:
		r.PrevHash = string(v)
	case fHash:
		r.Hash = string(v)
	}
	return j, nil
}

func scanNumberAt(s []byte, i int) (int, bool, error) {
	if i >= len(s) {
		return i, false, syntaxErr(s, i, "missing value")
	}
	return scanNumber(s, i)
}

// skipValue checks the syntax of the JSON value at s[i] and returns the offset after it.
func skipValue(s []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, syntaxErr(s, i, "nesting too deep")
	}
	if i >= len(s) {
		return i, syntaxErr(s, i, "missing value")
	}
	switch c := s[i]; {
	case c == '{' || c == '[':
		closer, isObject := byte('}'), c == '{'
		if !isObject {
			closer = ']'
		}
		i = skipSpace(s, i+1)
		if i < len(s) && s[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if isObject {
				if i >= len(s) || s[i] != '"' {
					return i, syntaxErr(s, i, "expected object key")
				}
				if i, err = skipString(s, i); err != nil {
					return i, err
				}
				if i = skipSpace(s, i); i >= len(s) || s[i] != ':' {
					return i, syntaxErr(s, i, "expected ':'")
				}
				i = skipSpace(s, i+1)
			}
			if i, err = skipValue(s, i, depth+1); err != nil {
				return i, err
			}
			if i = skipSpace(s, i); i >= len(s) {
				return i, syntaxErr(s, i, "unterminated object or array")
			}
			if s[i] == closer {
				return i + 1, nil
			}
			if s[i] != ',' {
				return i, syntaxErr(s, i, "expected ',' or a closing bracket")
			}
			i = skipSpace(s, i+1)
		}
	case c == '"':
		return skipString(s, i)
	case c == '-' || c >= '0' && c <= '9':
		j, _, err := scanNumber(s, i)
		return j, err
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(s[i:], []byte(lit)) {
			return i + len(lit), nil
		}
	}
	return i, syntaxErr(s, i, "invalid character")
}

// skipString finds the end of the string at s[i]. Escapes and UTF-8 are checked later, by
// Verify's canonical encoding, which decodes every string.
func skipString(s []byte, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return j + 1, nil
		case c == '\\':
			j++
		case c < 0x20:
			return j, syntaxErr(s, j, "control character in string")
		}
	}
	return len(s), syntaxErr(s, len(s), "unterminated string")
}
