package probe_test

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
)

// Nodes found by resolve: all take their names from node_names (the node
// label and target key use the name, the address stays on the Node); a
// reload that renames a node replaces its target and forgets the old one.
func TestResolvedNodesAreNamed(t *testing.T) {
	shop, err := demo.Start(t.Context(), demo.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	config := func(lb2 string) *checks.Config {
		cfg, err := kinds.Registry().Parse([]byte(fmt.Sprintf(`
global:
  interval: 1s
  timeout: 500ms
  node_names: {127.0.0.11: lb1, 127.0.0.12: lb2}
paths:
  - {name: direct, resolver: %q}
checks:
  - name: c
    type: http
    url: https://www.shop.test/
    nodes: {resolve: all}
    node_names: {127.0.0.12: %s}
`, shop.DNSAddr(), lb2)), "vantage.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	targets := func(s *probe.Scheduler) map[string]string {
		out := map[string]string{}
		for _, tg := range s.Targets() {
			out[tg.Key] = tg.Node.Label() + "=" + tg.Node.Address()
		}
		return out
	}
	sink := &recordSink{}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"http": &scriptProber{}}, Sinks: []probe.Sink{sink}})
	cfg := config("web2")
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	want := map[string]string{"c/direct/lb1": "lb1=127.0.0.11", "c/direct/web2": "web2=127.0.0.12", "c/direct/127.0.0.13": "127.0.0.13=127.0.0.13"}
	testenv.Eventually(t, 30*time.Second, "resolved nodes named", func() error {
		if got := targets(s); !maps.Equal(got, want) {
			return fmt.Errorf("targets %v, want %v", got, want)
		}
		return nil
	})

	cfg = config("lb2")
	s.Apply(cfg, paths(t, cfg))
	want = map[string]string{"c/direct/lb1": "lb1=127.0.0.11", "c/direct/lb2": "lb2=127.0.0.12", "c/direct/127.0.0.13": "127.0.0.13=127.0.0.13"}
	testenv.Eventually(t, 30*time.Second, "renamed node", func() error {
		if got := targets(s); !maps.Equal(got, want) {
			return fmt.Errorf("targets %v, want %v", got, want)
		}
		return nil
	})
	sink.mu.Lock()
	forgotten := slices.Clone(sink.forgotten)
	sink.mu.Unlock()
	if !slices.Contains(forgotten, "c/direct/web2") {
		t.Errorf("the old name's target was not forgotten: %v", forgotten)
	}
}

// A node leaving and rejoining a resolve: all check's DNS answer is told
// to NodeChange (the timeline's node_removed/node_added); the first answer
// is the starting set, not a change.
func TestNodeChangeOnDNSAnswer(t *testing.T) {
	shop, err := demo.Start(t.Context(), demo.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	cfg, err := kinds.Registry().Parse([]byte(fmt.Sprintf(`
global:
  interval: 500ms
  timeout: 400ms
  node_names: {127.0.0.11: lb1, 127.0.0.12: lb2, 127.0.0.13: lb3}
paths:
  - {name: direct, resolver: %q}
checks:
  - name: c
    type: http
    url: https://www.shop.test/
    nodes: {resolve: all}
`, shop.DNSAddr())), "vantage.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []string
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"http": &scriptProber{}}, Sinks: []probe.Sink{&recordSink{}},
		NodeChange: func(c *checks.Check, path string, n *probe.Node, added bool) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, fmt.Sprintf("%s/%s/%s=%s added=%v", c.Name, path, n.Label(), n.Address(), added))
		}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(changes)
	}
	testenv.Eventually(t, 30*time.Second, "three nodes", func() error {
		if n := len(s.Targets()); n != 3 {
			return fmt.Errorf("%d targets", n)
		}
		return nil
	})
	if c := got(); len(c) != 0 {
		t.Fatalf("the first answer reported as changes: %v", c)
	}
	if err := shop.SetFault("lb2", demo.Fault{DNSRemove: true}); err != nil {
		t.Fatal(err)
	}
	removed := []string{"c/direct/lb2=127.0.0.12 added=false"}
	testenv.Eventually(t, 30*time.Second, "lb2 removed", func() error {
		if c := got(); !slices.Equal(c, removed) {
			return fmt.Errorf("changes %v", c)
		}
		return nil
	})
	if err := shop.SetFault("lb2", demo.Fault{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "lb2 back", func() error {
		if c := got(); !slices.Equal(c, append(removed, "c/direct/lb2=127.0.0.12 added=true")) {
			return fmt.Errorf("changes %v", c)
		}
		return nil
	})
}
