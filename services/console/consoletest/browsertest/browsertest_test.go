package browsertest

import (
	"strings"
	"testing"
)

func TestWhenMissing(t *testing.T) {
	tests := []struct {
		env      string
		wantSkip bool
		wantMsg  string
	}{
		{"", false, "LOANFLOW_SKIP_BROWSER=1 skips"},
		{"0", false, "chromium is missing"},
		{"true", false, "chromium is missing"},
		{"yes", false, "chromium is missing"},
		{"1", true, "LOANFLOW_SKIP_BROWSER=1: the browser test is skipped"},
	}
	for _, tt := range tests {
		msg, skip := whenMissing(tt.env)
		if skip != tt.wantSkip || !strings.Contains(msg, tt.wantMsg) {
			t.Errorf("whenMissing(%q) = %q, %v; want skip %v and a message with %q", tt.env, msg, skip, tt.wantSkip, tt.wantMsg)
		}
	}
}
