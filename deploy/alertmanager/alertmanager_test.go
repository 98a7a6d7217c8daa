// Package alertmanager_test checks the shipped Alertmanager configuration:
// amtool accepts it, and its inhibit_rules name every node rule of the
// shipped vantage configs. daemon's TestAlertmanagerOnePagePerNode runs
// its inhibit_rules in a real Alertmanager.
package alertmanager_test

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

func TestConfigCheck(t *testing.T) {
	amtool := testenv.Binary(t, "/usr/bin/amtool", "prometheus-alertmanager")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, amtool, "check-config", "alertmanager.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// TestInhibitRulesNameNodeRules: every node rule (a node_* measure) of the
// shipped vantage configs is a source of an inhibit rule.
func TestInhibitRulesNameNodeRules(t *testing.T) {
	var am struct {
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	readYAML(t, "alertmanager.yml", &am)
	sources := map[string]bool{}
	for _, r := range am.InhibitRules {
		for _, m := range r.SourceMatchers {
			if name, ok := strings.CutPrefix(m, `alertname="`); ok {
				sources[strings.TrimSuffix(name, `"`)] = true
			}
		}
	}
	type alerts struct {
		Alerts []struct {
			Name string `yaml:"name"`
			When string `yaml:"when"`
		} `yaml:"alerts"`
	}
	var example alerts
	readYAML(t, "../../config.example.yaml", &example)
	var k8s struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, "../kubernetes/configmap.yaml", &k8s)
	all := example.Alerts
	for _, text := range k8s.Data {
		var a alerts
		if err := yaml.Unmarshal([]byte(text), &a); err == nil {
			all = append(all, a.Alerts...)
		}
	}
	nodeRules := 0
	for _, a := range all {
		if strings.HasPrefix(strings.TrimSpace(a.When), "node_") {
			nodeRules++
			if !sources[a.Name] {
				t.Errorf("node rule %q is not a source of any inhibit rule (sources %v)", a.Name, sources)
			}
		}
	}
	if nodeRules < 2 {
		t.Fatalf("found %d node rules in the shipped configs, want at least 2", nodeRules)
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
