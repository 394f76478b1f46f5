package config

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("unknown level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger returns the text or JSON logger of the settings.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	l, _ := ParseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
