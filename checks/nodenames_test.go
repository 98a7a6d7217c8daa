package checks_test

import (
	"maps"
	"net/netip"
	"strings"
	"testing"

	. "github.com/vantage-monitoring/vantage/checks"
)

// node_names: global names every check with nodes, a check's own entries
// win per address, listed addresses without a name take theirs, and a
// check without nodes keeps none (so its fingerprint ignores them).
func TestNodeNames(t *testing.T) {
	cfg := mustParse(t, `
global:
  node_names:
    10.0.0.11: lb1
    10.0.0.12: lb2
    "2001:db8:0::13": lb3
checks:
  - name: all
    type: http
    url: https://x.test/
    nodes: {resolve: all}
  - name: own
    type: http
    url: https://x.test/
    nodes: {resolve: all}
    node_names: {10.0.0.12: web2, 10.0.0.14: lb4}
  - name: listed
    type: http
    url: https://x.test/
    nodes:
      addresses: [10.0.0.11, "10.0.0.12:8443", {name: edge, address: 10.0.0.13}, 10.0.0.99]
  - name: plain
    type: tcp
    address: x.test:443
    node_names: {10.0.0.11: lb1}
`, noEnv)
	byName := map[string]*Check{}
	for i := range cfg.Checks {
		byName[cfg.Checks[i].Name] = &cfg.Checks[i]
	}
	want := map[string]string{"10.0.0.11": "lb1", "10.0.0.12": "lb2", "2001:db8::13": "lb3"}
	if got := byName["all"].NodeNames; !maps.Equal(got, want) {
		t.Errorf("all: %v, want %v", got, want)
	}
	want = map[string]string{"10.0.0.11": "lb1", "10.0.0.12": "web2", "2001:db8::13": "lb3", "10.0.0.14": "lb4"}
	if got := byName["own"].NodeNames; !maps.Equal(got, want) {
		t.Errorf("own: %v, want %v", got, want)
	}
	if !maps.Equal(cfg.Global.NodeNames, map[string]string{"10.0.0.11": "lb1", "10.0.0.12": "lb2", "2001:db8::13": "lb3"}) {
		t.Errorf("a check's names leaked into global: %v", cfg.Global.NodeNames)
	}
	for ip, name := range map[string]string{"10.0.0.12": "web2", "2001:db8::13": "lb3", "::ffff:10.0.0.11": "lb1", "10.0.0.15": ""} {
		if got := byName["own"].NodeName(netip.MustParseAddr(ip)); got != name {
			t.Errorf("NodeName(%s) = %q, want %q", ip, got, name)
		}
	}
	var labels []string
	for _, a := range byName["listed"].Nodes.Addresses {
		labels = append(labels, a.Label())
	}
	if got := strings.Join(labels, " "); got != "lb1 lb2 edge 10.0.0.99" {
		t.Errorf("listed labels %q", got)
	}
	if byName["plain"].NodeNames != nil {
		t.Errorf("a check without nodes kept node_names %v", byName["plain"].NodeNames)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), "node_names has no effect on a check without nodes") {
		t.Errorf("warnings %v", cfg.Warnings)
	}

	// Renaming a node changes the fingerprint of the checks that probe it,
	// so a reload starts that node anew; other checks keep theirs.
	renamed := mustParse(t, `
global:
  node_names: {10.0.0.11: lb1}
checks:
  - {name: a, type: http, url: "https://x.test/", nodes: {resolve: all}}
  - {name: b, type: tcp, address: "x.test:443"}
`, noEnv)
	again := mustParse(t, `
global:
  node_names: {10.0.0.11: web1}
checks:
  - {name: a, type: http, url: "https://x.test/", nodes: {resolve: all}}
  - {name: b, type: tcp, address: "x.test:443"}
`, noEnv)
	if renamed.Checks[0].Fingerprint() == again.Checks[0].Fingerprint() {
		t.Error("renaming a node kept the check's fingerprint")
	}
	if renamed.Checks[1].Fingerprint() != again.Checks[1].Fingerprint() {
		t.Error("renaming a node changed the fingerprint of a check without nodes")
	}
}
