package pseudonym

import (
	"strings"
	"testing"
)

func TestPhoneHashIsKeyedAndStable(t *testing.T) {
	a, err := New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New([]byte("fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Phone("9330445040"), a.Phone("9330445040"); got != want {
		t.Errorf("same key and phone: %s != %s", got, want)
	}
	if a.Phone("9330445040") == b.Phone("9330445040") {
		t.Error("two keys gave the same hash")
	}
	if a.Phone("9330445040") == a.Phone("9330445041") {
		t.Error("two phones gave the same hash")
	}
	if h := a.Phone("9330445040"); len(h) != 64 || strings.Contains(h, "9330445040") {
		t.Errorf("hash %q: want 64 hex characters without the phone", h)
	}
}

func TestSumSeparatesParts(t *testing.T) {
	h, _ := New([]byte("0123456789abcdef"))
	if h.Sum("ab", "c") == h.Sum("a", "bc") {
		t.Error("part boundaries do not change the hash")
	}
}

func TestNewRejectsShortKey(t *testing.T) {
	if _, err := New([]byte("short")); err == nil {
		t.Error("New accepted a 5-byte key")
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"9330445040", "93******40"},
		{"12345", "12*45"},
		{"1234", "****"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
