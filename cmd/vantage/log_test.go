package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestLogfmtRendersSlogValues(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "info", "logfmt")
	if err != nil {
		t.Fatal(err)
	}
	// exporter-toolkit logs through slog; its booleans reach the writer as
	// raw JSON and must print as text.
	slog.New(zerolog.NewSlogHandler(log)).Info("TLS is disabled.", "http2", false, "address", "127.0.0.1:9947")
	out := buf.String()
	for _, want := range []string{`msg="TLS is disabled."`, "http2=false", "address=127.0.0.1:9947", "level=info"} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %q lacks %q", out, want)
		}
	}
}
