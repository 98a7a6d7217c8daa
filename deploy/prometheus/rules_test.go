// Package prometheus_test checks the shipped Prometheus rules with the real
// promtool: syntax (check rules) and behaviour (test rules against
// vantage-rules.test.yaml).
package prometheus_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// promtool finds the binary; without one the test skips, except in CI
// (CI=true) where a missing tool must not pass silently.
func promtool(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "promtool", "prometheus")
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesCheck(t *testing.T) {
	t.Parallel()
	out := run(t, "check", "rules", "vantage-rules.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules did not report success:\n%s", out)
	}
}

func TestRulesUnitTests(t *testing.T) {
	t.Parallel()
	out := run(t, "test", "rules", "vantage-rules.test.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report success:\n%s", out)
	}
}

// TestEveryAlertIsUnitTested keeps the unit tests in step with the rules:
// an alert added to the rules without an alert_rule_test fails here.
func TestEveryAlertIsUnitTested(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "vantage-rules.yaml", &rules)
	readYAML(t, "vantage-rules.test.yaml", &tests)
	tested := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			tested[a.Alertname] = true
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if !tested[r.Alert] {
				t.Errorf("alert %s has no alert_rule_test in vantage-rules.test.yaml", r.Alert)
			}
		}
	}
	if len(alerts) < 4 {
		t.Errorf("alerts %v: want at least the four of docs/prometheus.md", alerts)
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
