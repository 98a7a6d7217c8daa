package stats

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
)

// gather maps "name{k=v,...}" (labels sorted by name) to the value;
// summaries give one entry per quantile plus _count and _sum.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	key := func(name string, m *dto.Metric, extra ...string) string {
		parts := slices.Clone(extra)
		for _, lp := range m.GetLabel() {
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		slices.Sort(parts)
		return name + "{" + strings.Join(parts, ",") + "}"
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if sm := m.GetSummary(); sm != nil {
				for _, q := range sm.GetQuantile() {
					out[key(mf.GetName(), m, fmt.Sprintf("quantile=%g", q.GetQuantile()))] = q.GetValue()
				}
				out[key(mf.GetName()+"_count", m)] = float64(sm.GetSampleCount())
				out[key(mf.GetName()+"_sum", m)] = sm.GetSampleSum()
				continue
			}
			out[key(mf.GetName(), m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestCollector(t *testing.T) {
	clk := newClock()
	cfg := config(5*time.Minute, time.Hour)
	cfg.Global.Location = "ams"
	cfg.Global.Labels = map[string]string{"team": "shop"}
	mc := metrics.New(cfg)
	s := New(Options{Config: cfg, Now: clk.Now, Labeler: mc.Labeler})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)

	if n := testutil.CollectAndCount(s); n != 0 {
		t.Fatalf("%d series before any run", n)
	}
	ps := paths{}
	lb := []*probe.Target{
		target(t, ps, "shop", "direct", "lb1"),
		target(t, ps, "shop", "direct", "lb2"),
		target(t, ps, "shop", "direct", "lb3"),
	}
	observeP90(s, lb[0], 100*time.Millisecond)
	observeP90(s, lb[1], 400*time.Millisecond)
	observeP90(s, lb[2], 100*time.Millisecond)
	s.Observe(obs(lb[0], time.Second, false)) // 100 ok of 101

	// The labels are exactly the check series' labels plus window/quantile.
	mc.Observe(obs(lb[0], time.Millisecond, true))
	base := "check=shop,location=ams,node=lb1,path=direct"
	got := gather(t, reg)
	k := Key{Target: lb[0].Key}
	for _, w := range []string{"5m", "1h"} {
		win := map[string]time.Duration{"5m": 5 * time.Minute, "1h": time.Hour}[w]
		for _, q := range []string{"0.5", "0.9", "0.99"} {
			name := "vantage_check_duration_quantile_seconds{" + base + ",quantile=" + q + ",team=shop,type=http,window=" + w + "}"
			v, ok := got[name]
			qf := map[string]float64{"0.5": 0.5, "0.9": 0.9, "0.99": 0.99}[q]
			want, _ := s.Quantile(k, win, qf)
			if !ok || v != want || v <= 0 {
				t.Errorf("%s = %g (present %v), want %g", name, v, ok, want)
			}
		}
		name := "vantage_check_success_ratio{" + base + ",team=shop,type=http,window=" + w + "}"
		if v, ok := got[name]; !ok || math.Abs(v-100.0/101) > 1e-12 {
			t.Errorf("%s = %g (present %v)", name, v, ok)
		}
		// _count and _sum are cumulative over the successful runs.
		name = "vantage_check_duration_quantile_seconds_count{" + base + ",team=shop,type=http,window=" + w + "}"
		if v := got[name]; v != 100 {
			t.Errorf("%s = %g, want 100", name, v)
		}
	}
	for i := range lb {
		name := "vantage_node_slowdown_ratio{" + strings.Replace(base, "lb1", lb[i].Node.Name, 1) + ",team=shop,type=http}"
		v, ok := got[name]
		sd, _ := s.NodeSlowdown(lb[i].Key)
		wantV := map[int]float64{0: 1, 1: 4, 2: 1}[i]
		if !ok || v != sd || math.Abs(v-wantV)/wantV > 0.03 {
			t.Errorf("%s = %g (present %v), query says %g, want about %g", name, v, ok, sd, wantV)
		}
	}
	// 3 targets × 2 windows × (summary + ratio) + 3 slowdowns.
	if n := testutil.CollectAndCount(s); n != 15 {
		t.Errorf("%d series, want 15", n)
	}
	if probs, err := testutil.CollectAndLint(s); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
	// The collector's series sit next to the check series in one registry.
	reg.MustRegister(mc)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather with the check collector: %v", err)
	}

	// A removed target's series go away, and so do the siblings'
	// slowdowns (two nodes left).
	s.Forget(lb[2])
	if n := testutil.CollectAndCount(s, "vantage_check_success_ratio"); n != 4 {
		t.Errorf("%d ratio series after Forget, want 4", n)
	}
	if n := testutil.CollectAndCount(s, "vantage_node_slowdown_ratio"); n != 0 {
		t.Errorf("%d slowdown series with two nodes, want 0", n)
	}
	// Past the short window only the hour is exported; past both, nothing.
	clk.Add(6 * time.Minute)
	got = gather(t, reg)
	for name := range got {
		if strings.HasPrefix(name, "vantage_check_") && strings.Contains(name, "window=5m") {
			t.Errorf("%s present after its window", name)
		}
	}
	if n := testutil.CollectAndCount(s, "vantage_check_success_ratio"); n != 2 {
		t.Errorf("%d ratio series, want 2 (1h only)", n)
	}
	clk.Add(2 * time.Hour)
	if n := testutil.CollectAndCount(s); n != 0 {
		t.Errorf("%d series after every window expired", n)
	}

	// A reload that changes the label set relabels the series.
	cfg2 := config(5 * time.Minute)
	cfg2.Global.Location = "fra"
	mc.Configure(cfg2)
	s.Configure(cfg2)
	s.Observe(obs(lb[0], 10*time.Millisecond, true))
	got = gather(t, reg)
	if _, ok := got["vantage_check_success_ratio{check=shop,location=fra,node=lb1,path=direct,type=http,window=5m}"]; !ok {
		t.Errorf("relabelled series missing: %v", got)
	}
}

func TestCollectorOwnLabeler(t *testing.T) {
	cfg := config(time.Minute)
	s := New(Options{Config: cfg})
	s.Observe(obs(target(t, paths{}, "c", "direct", ""), time.Millisecond, true))
	const want = `
# HELP vantage_check_success_ratio Share of runs that succeeded over a sliding window.
# TYPE vantage_check_success_ratio gauge
vantage_check_success_ratio{check="c",node="",path="direct",type="http",window="1m"} 1
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "vantage_check_success_ratio"); err != nil {
		t.Error(err)
	}
}
