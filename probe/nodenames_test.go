package probe_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
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
		cfg, err := checks.Parse([]byte(fmt.Sprintf(`
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
