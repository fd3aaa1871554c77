package admin

import (
	"testing"

	"github.com/caarlos0/env/v11"
)

// An empty LOANFLOW_ADMIN_ADDR takes the default like every setting; "off" is how an operator
// turns the listener off.
func TestListenSettings(t *testing.T) {
	tests := []struct {
		name, value string
		set, on     bool
		wantAddr    string
	}{
		{"unset", "", false, true, "127.0.0.1:9090"},
		{"empty takes the default", "", true, true, "127.0.0.1:9090"},
		{"off", "off", true, false, "off"},
		{"an address", "127.0.0.1:0", true, true, "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set {
				t.Setenv("LOANFLOW_ADMIN_ADDR", tt.value)
			}
			var s Settings
			if err := env.Parse(&s); err != nil {
				t.Fatal(err)
			}
			if s.Addr != tt.wantAddr {
				t.Fatalf("Addr = %q, want %q", s.Addr, tt.wantAddr)
			}
			if s.Addr == "127.0.0.1:9090" {
				return // the default is not bound here: another process may hold it
			}
			ln, err := Listen(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := ln != nil; got != tt.on {
				t.Fatalf("listening = %v, want %v", got, tt.on)
			}
			if ln != nil {
				ln.Close()
			}
		})
	}
}
