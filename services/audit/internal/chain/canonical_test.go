package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalPayload(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, `null`},
		{"scalars", ` 42 `, `42`},
		{"whitespace", "{ \"b\" : [ 1 , 2 ] ,\n\t\"a\" : { } , \"c\": [ ] }", `{"a":{},"b":[1,2],"c":[]}`},
		{"nested key order", `{"z":{"y":1,"x":{"b":true,"a":false}},"a":null}`, `{"a":null,"z":{"x":{"a":false,"b":true},"y":1}}`},
		{"sorted by bytes, not length", `{"ab":1,"b":2,"a":3,"B":4}`, `{"B":4,"a":3,"ab":1,"b":2}`},
		{"keys compared decoded", `{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{"numbers kept as written", `[1.50,-0,1e+10,2E-3,0.0]`, `[1.50,-0,1e+10,2E-3,0.0]`},
		{"escapes minimised", `"\u0041\/\u00e9\u2028\ud83d\ude00"`, "\"A/é\u2028😀\""},
		{"escapes kept", `"q\" b\\ \u0001 \b\f\n\r\t"`, `"q\" b\\ \u0001 \b\f\n\r\t"`},
		{"html not escaped", `"<a>&amp;"`, `"<a>&amp;"`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e encoder
			got, err := e.canonicalPayload([]byte(tt.in))
			if err != nil {
				t.Fatalf("canonicalPayload(%s): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("canonicalPayload(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			// Canonical form is a fixed point.
			again, err := e.canonicalPayload(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not a fixed point: %s -> %s, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalPayloadRejects(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"duplicate key", `{"a":1,"a":2}`, "duplicate key"},
		{"duplicate key unsorted", `{"b":1,"a":2,"b":3}`, "duplicate key"},
		{"duplicate key by escape", `{"a":1,"\u0061":2}`, "duplicate key"},
		{"invalid UTF-8", "\"\xff\"", "UTF-8"},
		{"lone surrogate", `"\ud83d"`, "surrogate"},
		{"low surrogate first", `"\ude00\ud83d"`, "surrogate"},
		{"trailing data", `{} {}`, "after the JSON value"},
		{"trailing comma", `[1,]`, "invalid character"},
		{"unquoted key", `{a:1}`, "expected object key"},
		{"leading zero", `01`, "invalid number"},
		{"bare minus", `-`, "invalid number"},
		{"raw control character", "\"a\nb\"", "control character"},
		{"bad escape", `"\x"`, "invalid escape"},
		{"unterminated", `{"a":"b`, "unterminated string"},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), "nesting too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e encoder
			_, err := e.canonicalPayload([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errNotCanonicalisable) {
				t.Errorf("canonicalPayload(%q) error %v, want one about %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

// FuzzCanonicalPayload checks that whatever gets a canonical form keeps its meaning and is its
// own canonical form.
func FuzzCanonicalPayload(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x"]}`, `"\u00e9\ud83d\ude00"`, `[1.50,-0,2E-3]`, `{"a":{"c":1,"b":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e encoder
		got, err := e.canonicalPayload(in)
		if err != nil || len(in) == 0 { // empty is null by design
			return
		}
		a, err := decodeJSON(in)
		if err != nil {
			t.Fatalf("canonical form of invalid JSON %q: %s", in, got)
		}
		b, err := decodeJSON(got)
		if err != nil {
			t.Fatalf("canonical form %q of %q is not JSON: %v", got, in, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("meaning changed: %q -> %q", in, got)
		}
		again, err := e.canonicalPayload(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("not a fixed point: %q -> %q (%v)", got, again, err)
		}
	})
}

// decodeJSON decodes with numbers kept as written, as the canonical form keeps them.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value: %v", err)
	}
	return v, nil
}
