// Package statstest builds the targets and runs that tests of the
// statistics and of their exposition feed to a stats.Stats. Imported only
// by tests.
package statstest

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// T0 is aligned on 30s and 6m sub-window boundaries.
var T0 = time.Unix(1_800_000_000, 0)

// Config has the given quantile windows.
func Config(windows ...time.Duration) *checks.Config {
	cfg := &checks.Config{}
	for _, w := range windows {
		cfg.Global.QuantileWindows = append(cfg.Global.QuantileWindows, model.Duration(w))
	}
	cfg.Global.MaxDomainsPerCheck = 50
	return cfg
}

// Paths caches one netpath.Path per name for a test.
type Paths map[string]*netpath.Path

// Get is the path named name, made on first use.
func (ps Paths) Get(t testing.TB, name string) *netpath.Path {
	if p := ps[name]; p != nil {
		return p
	}
	p, err := netpath.New(checks.Path{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	ps[name] = p
	return p
}

// Target is an http check's target over path, on node when it is not "".
func Target(t testing.TB, ps Paths, check, path, node string) *probe.Target {
	var n *probe.Node
	if node != "" {
		n = &probe.Node{Name: node}
	}
	c := &checks.Check{Name: check, Type: "http"}
	return &probe.Target{Key: probe.TargetKey(check, path, n), Check: c, Path: ps.Get(t, path), Node: n}
}

// Obs is a run of t that took d and succeeded or failed.
func Obs(t *probe.Target, d time.Duration, ok bool) *probe.Observation {
	r := probe.Success
	if !ok {
		r = probe.Failure
	}
	return &probe.Observation{Target: t, Outcome: &probe.Outcome{Result: r, Duration: d}}
}
