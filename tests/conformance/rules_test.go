package conformance

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDuplicateKey(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"no duplicate", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{"top level", `{"a":1,"b":2,"a":3}`, "$.a"},
		{"nested object", `{"a":{"x":1,"x":2}}`, "$.a.x"},
		{"inside an array", `{"data":[{"t":1},{"t":1,"t":2}]}`, "$.data[1].t"},
		{"same key in sibling objects is fine", `[{"k":1},{"k":2}]`, ""},
		{"escaped spelling of the same key", `{"a":1,"\u0061":2}`, "$.a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := duplicateKey([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("duplicateKey(%s) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestStrictJSON(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // a substring of the problem; "" for none
	}{
		{"object", `{"a":1}`, ""},
		{"object with trailing newline", "{\"a\":1}\n", ""},
		{"empty", ``, "empty body"},
		{"trailing comma", `{"a":1,}`, "not strict JSON"},
		{"unquoted key", `{a:1}`, "not strict JSON"},
		{"two values", `{"a":1}{"a":1}`, "not strict JSON"},
		{"array", `[1]`, "not a JSON object"},
		{"not UTF-8", "{\"a\":\"\xff\"}", "not UTF-8"},
		{"duplicate key", `{"a":1,"a":1}`, "duplicate JSON key $.a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strictJSON([]byte(tt.raw))
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("strictJSON(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON; charset=UTF-8", true},
		{"application/json; charset=windows-1251", false},
		{"text/plain", false},
		{"", false},
		{"application/problem+json", false},
	}
	for _, tt := range tests {
		if got := contentType(tt.value) == ""; got != tt.ok {
			t.Errorf("contentType(%q) ok = %v, want %v (%s)", tt.value, got, tt.ok, contentType(tt.value))
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"2", 2 * time.Second, true},
		{" 1 ", time.Second, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, true}, // a date in the past: poll now
	}
	for _, tt := range tests {
		got, err := retryAfter(http.Header{"Retry-After": {tt.value}})
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, ok %v", tt.value, got, err, tt.want, tt.ok)
		}
	}
}

func TestAbsoluteURL(t *testing.T) {
	tests := []struct {
		v    any
		web  bool
		want bool
	}{
		{"https://bank.example/apply?x=1", true, true},
		{"http://bank.example/apply", true, true},
		{"/apply?x=1", true, false},
		{"bank.example/apply", true, false},
		{"bank://apply?x=1", true, false},
		{"bank://apply?x=1", false, true},
		{"apply/x", false, false},
		{"", false, false},
		{" https://bank.example/", true, false},
		{42, true, false},
	}
	for _, tt := range tests {
		if got := absoluteURL(tt.v, tt.web); got != tt.want {
			t.Errorf("absoluteURL(%#v, web %v) = %v, want %v", tt.v, tt.web, got, tt.want)
		}
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond) // unsorted on purpose
	}
	got := summarise(ds)
	want := Latency{Count: 100, P50: Duration(50 * time.Millisecond), P90: Duration(90 * time.Millisecond),
		P99: Duration(99 * time.Millisecond), Max: Duration(100 * time.Millisecond)}
	if got != want {
		t.Errorf("summarise = %+v, want %+v", got, want)
	}
	if !slices.IsSortedFunc(ds, func(a, b time.Duration) int { return int(b - a) }) {
		t.Error("summarise sorted its input in place")
	}
	if one := summarise([]time.Duration{7}); one.P50 != 7 || one.P99 != 7 {
		t.Errorf("one sample: %+v", one)
	}
	if none := summarise(nil); none != (Latency{}) {
		t.Errorf("no samples: %+v", none)
	}
}
