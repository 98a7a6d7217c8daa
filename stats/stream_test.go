package stats

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vantage-monitoring/vantage/internal/expo/expotest"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
)

// Stats.Stream into a expo.Encoder must say what registering Stats in
// a registry and encoding with expfmt says, in every format the Encoder
// writes; both outputs are parsed back with prometheus/common's parsers
// and compared (with the helpers of package expotest, shared with the
// metrics package's tests).

// checkStream streams s with want in format and compares it with the
// registry's output for the families want asks for; it returns the
// decoded families.
func checkStream(t *testing.T, format expfmt.Format, s *Stats, want func(string) bool) []*dto.MetricFamily {
	t.Helper()
	gathered := expotest.FilterFamilies(expotest.Gather(t, s), want)
	got := expotest.Stream(t, format, s, want)
	return expotest.CheckEquivalent(t, format, got, expotest.Expfmt(t, format, gathered), gathered)
}

// streamStats has two checks: shop with three nodes (slowdowns) on two
// windows, and api without nodes seen only in the hour window. Label
// values need escaping, and the pairs are shared with the check series.
func streamStats(t *testing.T) *Stats {
	t.Helper()
	clk := newClock()
	cfg := config(5*time.Minute, time.Hour)
	cfg.Global.Location = "ams"
	cfg.Global.Labels = map[string]string{"team": "shop \"eu\"\\\nü"}
	mc := metrics.New(cfg)
	s := New(Options{Config: cfg, Now: clk.Now, Labeler: mc.Labeler, Pairs: mc.TargetPairs})
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
	return s
}

var statsFamilies = []string{quantileName, ratioName, slowdownName}

func TestStreamMatchesRegistry(t *testing.T) {
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

// TestStreamWant: only the families want asks for are written, the same
// as the registry's output filtered to them.
func TestStreamWant(t *testing.T) {
	s := streamStats(t)
	filters := [][]string{
		{ratioName},
		{quantileName},
		{slowdownName},
		{ratioName, slowdownName},
		{quantileName, "vantage_check_up"},
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

func TestStreamEmpty(t *testing.T) {
	s := New(Options{Config: config(time.Minute)})
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			got := expotest.Stream(t, wf.Format, s, nil)
			if want := expotest.Expfmt(t, wf.Format, nil); !bytes.Equal(got, want) {
				t.Errorf("no data wrote %q, expfmt %q", got, want)
			}
		})
	}
}
