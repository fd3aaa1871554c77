// Package logging builds the structured logger every loanflow process writes with: JSON lines
// on stderr, one level for the process. Nothing logged may hold a clear phone number; callers
// log search_id, correlation_id and masked or hashed values only.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Settings come from the environment.
type Settings struct {
	Level  string `env:"LOG_LEVEL" envDefault:"info"`
	Format string `env:"LOG_FORMAT" envDefault:"json"`
}

// New returns a logger writing to w at the configured level and format (json or text).
func New(w io.Writer, s Settings) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.Level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", s.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(s.Format) {
	case "json", "":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("LOG_FORMAT %q: want json or text", s.Format)
	}
}
