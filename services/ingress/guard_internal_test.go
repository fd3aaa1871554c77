package ingress

import (
	"testing"
	"time"
)

func TestAllowlist(t *testing.T) {
	l, err := parseAllowlist([]string{" 5.45.192.0/18", "2a02:6b8::/32", "", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote string
		want   bool
	}{
		{"5.45.200.1:443", true},
		{"5.45.255.255:1", true},
		{"5.46.0.1:1", false},
		{"[2a02:6b8:c0::1]:8080", true},
		{"[2a03::1]:8080", false},
		{"[::ffff:5.45.192.9]:1", true}, // an IPv4 peer seen on a dual-stack socket
		{"203.0.113.7:5000", true},
		{"203.0.113.8:5000", false},
		{"not-an-address", false},
	}
	for _, tt := range tests {
		if got := l.admits(tt.remote); got != tt.want {
			t.Errorf("admits(%q) = %v, want %v", tt.remote, got, tt.want)
		}
	}
	if !(allowlist(nil)).admits("198.51.100.1:1") {
		t.Error("an empty allowlist refused a peer")
	}
	for _, bad := range []string{"10.0.0.0/33", "yandex", "10.0.0/8"} {
		if _, err := parseAllowlist([]string{bad}); err == nil {
			t.Errorf("parseAllowlist(%q) accepted it", bad)
		}
	}
}

func TestTokenLimits(t *testing.T) {
	if ok, _ := (*tokenLimits)(nil).take(0); !ok {
		t.Fatal("no limit configured, yet a request was refused")
	}
	l := newTokenLimits(0.5, 2) // one request every 2 s, two at once
	for i := range 2 {
		if ok, _ := l.take(0); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait := l.take(0)
	if ok || wait <= 0 || wait > 2*time.Second {
		t.Fatalf("third request: ok=%v wait=%v; want refused with a wait up to 2s", ok, wait)
	}
	if ok, _ := l.take(1); !ok {
		t.Fatal("another token was refused because of the first one's burst")
	}
	if got := tooMany(1500 * time.Millisecond).RetryAfter; got != "2" {
		t.Errorf("Retry-After for 1.5s = %q, want 2 (rounded up)", got)
	}
	if got := tooMany(time.Millisecond).RetryAfter; got != "1" {
		t.Errorf("Retry-After for 1ms = %q, want 1", got)
	}
}
