package main

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
)

// TestDocsQuoteDemoEvalInterval: docs/alerting.md states the demo's rule
// evaluation interval in two places; both must be the one the demo uses.
func TestDocsQuoteDemoEvalInterval(t *testing.T) {
	b, err := os.ReadFile("../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	iv := model.Duration(demoEvalInterval).String()
	for _, want := range []string{
		"`vantage demo` uses " + iv + ")",
		strings.TrimSuffix(iv, "s") + " s evaluation",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/alerting.md does not say %q (the demo evaluates rules every %s)", want, iv)
		}
	}
}
