package metrics_test

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vantage-monitoring/vantage/internal/expo/expotest"
	"github.com/vantage-monitoring/vantage/internal/statstest"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/stats"
)

// The statistics families: their labels, values and absence, and the
// streaming path against the registry path. The figures come from a real
// stats.Stats fed with runs on a fake clock.

// The fixture is statstest's: t0 aligned on sub-window boundaries,
// configs with given windows, paths, http targets and runs.
var (
	t0     = statstest.T0
	config = statstest.Config
	target = statstest.Target
	obs    = statstest.Obs
)

type paths = statstest.Paths

// clock is the tests' settable fake clock.
type clock = testenv.Clock

func newClock() *clock { return testenv.NewClock(t0) }

// observeP90 records 100 successful runs of tg whose p90 is about p90.
func observeP90(s *stats.Stats, tg *probe.Target, p90 time.Duration) {
	for i := range 100 {
		s.Observe(obs(tg, p90*time.Duration(50+i)/140, true))
	}
}

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

func TestStatsExport(t *testing.T) {
	clk := newClock()
	cfg := config(5*time.Minute, time.Hour)
	cfg.Global.Location = "ams"
	cfg.Global.Labels = map[string]string{"team": "shop"}
	mc := metrics.New(cfg)
	s := stats.New(stats.Options{Config: cfg, Now: clk.Now})
	x := metrics.NewStatsExport(s, mc)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(x)

	if n := testutil.CollectAndCount(x); n != 0 {
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
	k := stats.Key{Target: lb[0].Key}
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
	if n := testutil.CollectAndCount(x); n != 15 {
		t.Errorf("%d series, want 15", n)
	}
	if probs, err := testutil.CollectAndLint(x); err != nil || len(probs) > 0 {
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
	if n := testutil.CollectAndCount(x, "vantage_check_success_ratio"); n != 4 {
		t.Errorf("%d ratio series after Forget, want 4", n)
	}
	if n := testutil.CollectAndCount(x, "vantage_node_slowdown_ratio"); n != 0 {
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
	if n := testutil.CollectAndCount(x, "vantage_check_success_ratio"); n != 2 {
		t.Errorf("%d ratio series, want 2 (1h only)", n)
	}
	clk.Add(2 * time.Hour)
	if n := testutil.CollectAndCount(x); n != 0 {
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

// TestStatsExportOwnPairs: a target the check series have not seen gets
// label pairs built by the export, the same labels.
func TestStatsExportOwnPairs(t *testing.T) {
	cfg := config(time.Minute)
	s := stats.New(stats.Options{Config: cfg})
	x := metrics.NewStatsExport(s, metrics.New(cfg))
	s.Observe(obs(target(t, paths{}, "c", "direct", ""), time.Millisecond, true))
	const want = `
# HELP vantage_check_success_ratio Share of runs that succeeded over a sliding window.
# TYPE vantage_check_success_ratio gauge
vantage_check_success_ratio{check="c",node="",path="direct",type="http",window="1m"} 1
`
	if err := testutil.CollectAndCompare(x, strings.NewReader(want), "vantage_check_success_ratio"); err != nil {
		t.Error(err)
	}
}

// StatsExport.Stream into an expo.Encoder must say what registering it in
// a registry and encoding with expfmt says, in every format the Encoder
// writes; both outputs are parsed back with prometheus/common's parsers
// and compared (with the helpers of package expotest, shared with the
// metrics package's tests).

// checkStream streams s with want in format and compares it with the
// registry's output for the families want asks for; it returns the
// decoded families.
func checkStream(t *testing.T, format expfmt.Format, s *metrics.StatsExport, want func(string) bool) []*dto.MetricFamily {
	t.Helper()
	gathered := expotest.FilterFamilies(expotest.Gather(t, s), want)
	got := expotest.Stream(t, format, s, want)
	return expotest.CheckEquivalent(t, format, got, expotest.Expfmt(t, format, gathered), gathered)
}

// streamStats has two checks: shop with three nodes (slowdowns) on two
// windows, and api without nodes seen only in the hour window. Label
// values need escaping, and the pairs are shared with the check series.
func streamStats(t *testing.T) *metrics.StatsExport {
	t.Helper()
	clk := newClock()
	cfg := config(5*time.Minute, time.Hour)
	cfg.Global.Location = "ams"
	cfg.Global.Labels = map[string]string{"team": "shop \"eu\"\\\nü"}
	mc := metrics.New(cfg)
	s := stats.New(stats.Options{Config: cfg, Now: clk.Now})
	ps := paths{}
	api := target(t, ps, "api", "direct", "")
	for i := range 20 {
		s.Observe(obs(api, time.Duration(i+1)*time.Millisecond, i%4 != 0))
	}
	clk.Add(6 * time.Minute)
	lb := []*probe.Target{
		target(t, ps, "shop", "direct", "lb1"),
		target(t, ps, "shop", "direct", "lb2"),
		target(t, ps, "shop", "direct", "lb3"),
	}
	for i, p90 := range []time.Duration{100, 400, 120} {
		observeP90(s, lb[i], p90*time.Millisecond)
		mc.Observe(obs(lb[i], time.Millisecond, true))
	}
	s.Observe(obs(lb[0], time.Second, false))
	return metrics.NewStatsExport(s, mc)
}

var statsFamilies = []string{"vantage_check_duration_quantile_seconds", "vantage_check_success_ratio", "vantage_node_slowdown_ratio"}

func TestStatsStreamMatchesRegistry(t *testing.T) {
	s := streamStats(t)
	all := expotest.Gather(t, s)
	if g, w := expotest.FamilyNames(all), slices.Sorted(slices.Values(statsFamilies)); !slices.Equal(g, w) {
		t.Fatalf("gathered %v, want %v", g, w)
	}
	// api has no 5m series: the fixture covers absent series too.
	for _, mf := range all {
		for _, m := range mf.Metric {
			var check, window string
			for _, lp := range m.Label {
				switch lp.GetName() {
				case "check":
					check = lp.GetValue()
				case "window":
					window = lp.GetValue()
				}
			}
			if check == "api" && window == "5m" {
				t.Fatalf("api has a 5m series: %v", m)
			}
		}
	}
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			mfs := checkStream(t, wf.Format, s, nil)
			if len(mfs) != 3 {
				t.Errorf("decoded %d families, want 3", len(mfs))
			}
		})
	}
}

// TestStatsStreamWant: only the families want asks for are written, the same
// as the registry's output filtered to them.
func TestStatsStreamWant(t *testing.T) {
	s := streamStats(t)
	filters := [][]string{
		{"vantage_check_success_ratio"},
		{"vantage_check_duration_quantile_seconds"},
		{"vantage_node_slowdown_ratio"},
		{"vantage_check_success_ratio", "vantage_node_slowdown_ratio"},
		{"vantage_check_duration_quantile_seconds", "vantage_check_up"},
		{"vantage_check_up"}, // none of ours: nothing at all
		{},
	}
	for _, names := range filters {
		want := func(n string) bool { return slices.Contains(names, n) }
		var asked []string
		for _, n := range statsFamilies {
			if want(n) {
				asked = append(asked, n)
			}
		}
		slices.Sort(asked)
		for _, wf := range expotest.WireFormats {
			t.Run(strings.Join(names, "+")+"/"+wf.Name, func(t *testing.T) {
				mfs := checkStream(t, wf.Format, s, want)
				if g := expotest.FamilyNames(mfs); !slices.Equal(g, asked) {
					t.Errorf("families %v, want %v", g, asked)
				}
				if len(asked) == 0 {
					got := expotest.Stream(t, wf.Format, s, want)
					if wf.Format.FormatType() == expfmt.TypeOpenMetrics && string(got) != "# EOF\n" ||
						wf.Format.FormatType() != expfmt.TypeOpenMetrics && len(got) != 0 {
						t.Errorf("nothing asked, wrote %q", got)
					}
				}
			})
		}
	}
}

func TestStatsStreamEmpty(t *testing.T) {
	cfg := config(time.Minute)
	s := metrics.NewStatsExport(stats.New(stats.Options{Config: cfg}), metrics.New(cfg))
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			got := expotest.Stream(t, wf.Format, s, nil)
			if want := expotest.Expfmt(t, wf.Format, nil); !bytes.Equal(got, want) {
				t.Errorf("no data wrote %q, expfmt %q", got, want)
			}
		})
	}
}
