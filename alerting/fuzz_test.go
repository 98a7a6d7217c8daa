package alerting

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe/tcpprobe"
)

// FuzzAnnotation loads an alert whose annotation is the fuzzed template
// and, when the loader accepts it, renders it as the engine does when an
// instance fires (docs/fuzzing.md).
func FuzzAnnotation(f *testing.F) {
	for _, s := range []string{
		"node {{ .node }} is {{ .value }}x slower than its siblings",
		"{{ humanize .raw_value }} {{ humanizeDuration .raw_value }} {{ humanizePercentage .raw_value }} {{ toUpper .check }} {{ toLower .measure }}",
		"{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}",
		"{{ range $ }}{{ . }}{{ else }}none{{ end }}",
		"{{ range 99999999999 }}x{{ end }}",
		"{{ $n := 99999999999 }}{{ range $n }}{{ end }}",
		"{{ range $ }}{{ range $ }}{{ range $ }}{{ range $ }}{{ end }}{{ end }}{{ end }}{{ end }}",
		`{{ define "a" }}{{ template "a" }}{{ template "a" }}{{ end }}{{ template "a" }}`,
		`{{ block "a" . }}{{ template "a" . }}{{ end }}`,
		`{{ printf "%999999d" 1 }}`,
		strings.Repeat(`{{ printf "%99999d" 1 }}`, 20),
		"{{ .missing.deeper }}{{ index . \"x\" }}{{ len . }}",
		"{{ call .check }}",
		"{{ .raw_value | printf \"%.1f\" }}",
		"{{ with .node }}{{ . }}{{ else }}-{{ end }}",
		"{{",
		"{{ .value } is",
	} {
		f.Add(s, 1.5)
	}
	f.Add("{{ humanize .raw_value }}", 1e308)
	f.Add("{{ humanizeDuration .raw_value }}", -1e-300)
	f.Fuzz(func(t *testing.T, text string, value float64) {
		defer testenv.HangGuard()()
		if !utf8.ValidString(text) {
			return // yaml.v3 would write it as !!binary
		}
		doc, err := yaml.Marshal(map[string]any{
			"checks": []any{map[string]any{"name": "web", "type": "tcp", "address": "127.0.0.1:1"}},
			"alerts": []any{map[string]any{"name": "Slow", "when": "p99 > 1s", "annotations": map[string]string{"summary": text}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := checks.NewRegistry(tcpprobe.Kind{}).Parse(doc, "fuzz.yaml", nil)
		if err != nil {
			return // the loader's own targets check its errors
		}
		e := New(Options{Logger: zerolog.Nop()})
		if err := e.Configure(cfg); err != nil {
			t.Fatalf("the loader accepts annotation %q but the engine does not: %v", text, err)
		}
		t0 := time.Date(2025, 11, 28, 20, 0, 0, 0, time.UTC)
		inst := &Instance{Rule: "Slow", State: Firing, Value: value, Measure: "p99", FiredAt: t0, Fired: []time.Time{t0},
			Labels: map[string]string{"alertname": "Slow", "check": "web", "path": "default", "node": "10.0.0.1", "severity": "warning"}}
		done := make(chan map[string]string, 1)
		go func() { done <- e.annotations(e.rules[0], inst) }()
		select {
		case out := <-done:
			// An error names the action it failed in, so it may quote the
			// template once.
			if got, max := len(out["summary"]), maxAnnotationLen+len(text)+1024; got > max {
				t.Errorf("annotation %q renders %d bytes, more than %d", text, got, max)
			}
		case <-time.After(10 * time.Second):
			// The goroutine is left running: a template cannot be stopped.
			t.Fatalf("annotation %q still rendering after 10s", text)
		}
	})
}
