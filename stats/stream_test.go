package stats

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
)

// Stats.Stream into a metrics.Encoder must say what registering Stats in
// a registry and encoding with expfmt says, in every format the Encoder
// writes; both outputs are parsed back with prometheus/common's parsers
// and compared.

var streamFormats = []struct {
	name string
	f    expfmt.Format
}{
	{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
	{"openmetrics", expfmt.NewFormat(expfmt.TypeOpenMetrics)},
	{"proto", expfmt.NewFormat(expfmt.TypeProtoDelim)},
}

func streamEncode(t *testing.T, format expfmt.Format, s metrics.Streamer, want func(string) bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	e, ok := metrics.NewEncoder(&buf, format)
	if !ok {
		t.Fatalf("NewEncoder refused %q", format)
	}
	s.Stream(e, want)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func streamGather(t *testing.T, c prometheus.Collector, want func(string) bool) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := mfs[:0]
	for _, mf := range mfs {
		if want == nil || want(mf.GetName()) {
			out = append(out, mf)
		}
	}
	return out
}

func streamExpfmt(t *testing.T, format expfmt.Format, mfs []*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.(expfmt.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func streamDecode(format expfmt.Format, b []byte) ([]*dto.MetricFamily, error) {
	if format.FormatType() == expfmt.TypeTextPlain {
		p := expfmt.NewTextParser(model.UTF8Validation)
		m, err := p.TextToMetricFamilies(bytes.NewReader(b))
		var out []*dto.MetricFamily
		for _, mf := range m {
			out = append(out, mf)
		}
		return out, err
	}
	dec := expfmt.NewDecoder(bytes.NewReader(b), format)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, mf)
	}
}

// streamNormalize sorts families by name, metrics by label set and each
// metric's labels by name (none of these orders means anything).
func streamNormalize(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	key := func(m *dto.Metric) string {
		var b strings.Builder
		for _, lp := range m.GetLabel() {
			b.WriteString(lp.GetName() + "\x00" + lp.GetValue() + "\x00")
		}
		return b.String()
	}
	out := make([]*dto.MetricFamily, len(mfs))
	for i, mf := range mfs {
		mf = proto.Clone(mf).(*dto.MetricFamily)
		for _, m := range mf.Metric {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(key(a), key(b)) })
		out[i] = mf
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

func streamNames(mfs []*dto.MetricFamily) []string {
	var n []string
	for _, mf := range mfs {
		n = append(n, mf.GetName())
	}
	slices.Sort(n)
	return n
}

// streamDiff is "" when got and want hold the same families (proto.Equal
// counts NaN equal to NaN).
func streamDiff(got, want []*dto.MetricFamily) string {
	got, want = streamNormalize(got), streamNormalize(want)
	if g, w := streamNames(got), streamNames(want); !slices.Equal(g, w) {
		return fmt.Sprintf("families %v, want %v", g, w)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return fmt.Sprintf("family %s:\n got %s\nwant %s", got[i].GetName(), prototext.Format(got[i]), prototext.Format(want[i]))
		}
	}
	return ""
}

// streamLines compares text outputs line by line in any order: comments
// and series (with their label strings) exactly, values as numbers.
func streamLines(t *testing.T, got, want []byte) {
	t.Helper()
	split := func(b []byte) [][2]string {
		var out [][2]string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "#") || l == "" {
				out = append(out, [2]string{l, ""})
				continue
			}
			i := strings.LastIndexByte(l, ' ')
			out = append(out, [2]string{l[:i], l[i+1:]})
		}
		slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+"\n"+a[1], b[0]+"\n"+b[1]) })
		return out
	}
	g, w := split(got), split(want)
	if len(g) != len(w) {
		t.Errorf("%d lines, expfmt wrote %d:\n%s\n---\n%s", len(g), len(w), got, want)
		return
	}
	for i := range g {
		if g[i][0] != w[i][0] {
			t.Errorf("line %q, expfmt wrote %q", g[i][0], w[i][0])
			return
		}
		if g[i][1] == w[i][1] {
			continue
		}
		gv, gErr := strconv.ParseFloat(g[i][1], 64)
		wv, wErr := strconv.ParseFloat(w[i][1], 64)
		if gErr != nil || wErr != nil || !(gv == wv || math.IsNaN(gv) && math.IsNaN(wv)) {
			t.Errorf("%s: value %q, expfmt wrote %q", g[i][0], g[i][1], w[i][1])
		}
	}
}

// checkStream streams s with want in format and compares it with the
// registry's output for the families want asks for; it returns the
// decoded families.
func checkStream(t *testing.T, format expfmt.Format, s *Stats, want func(string) bool) []*dto.MetricFamily {
	t.Helper()
	gathered := streamGather(t, s, want)
	got := streamEncode(t, format, s, want)
	ref := streamExpfmt(t, format, gathered)
	gotMF, err := streamDecode(format, got)
	if err != nil {
		t.Fatalf("parsing the Encoder's output: %v\n%q", err, got)
	}
	refMF, err := streamDecode(format, ref)
	if err != nil {
		t.Fatalf("parsing expfmt's output: %v", err)
	}
	if d := streamDiff(gotMF, refMF); d != "" {
		t.Errorf("Encoder and expfmt disagree: %s", d)
	}
	switch format.FormatType() {
	case expfmt.TypeProtoDelim:
		if d := streamDiff(gotMF, gathered); d != "" {
			t.Errorf("decoded protobuf is not what was gathered: %s", d)
		}
	case expfmt.TypeOpenMetrics:
		if !bytes.HasSuffix(got, []byte("# EOF\n")) || bytes.Count(got, []byte("# EOF")) != 1 {
			t.Errorf("OpenMetrics output does not end with exactly one # EOF:\n%s", got)
		}
		streamLines(t, got, ref)
	case expfmt.TypeTextPlain:
		streamLines(t, got, ref)
	}
	return gotMF
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
	all := streamGather(t, s, nil)
	if g, w := streamNames(all), slices.Sorted(slices.Values(statsFamilies)); !slices.Equal(g, w) {
		t.Fatalf("gathered %v, want %v", g, w)
	}
	for _, n := range streamNames(all) {
		if !slices.Contains(s.FamilyNames(), n) {
			t.Errorf("FamilyNames lacks %s", n)
		}
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
	for _, wf := range streamFormats {
		t.Run(wf.name, func(t *testing.T) {
			mfs := checkStream(t, wf.f, s, nil)
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
		for _, wf := range streamFormats {
			t.Run(strings.Join(names, "+")+"/"+wf.name, func(t *testing.T) {
				mfs := checkStream(t, wf.f, s, want)
				if g := streamNames(mfs); !slices.Equal(g, asked) {
					t.Errorf("families %v, want %v", g, asked)
				}
				if len(asked) == 0 {
					got := streamEncode(t, wf.f, s, want)
					if wf.f.FormatType() == expfmt.TypeOpenMetrics && string(got) != "# EOF\n" ||
						wf.f.FormatType() != expfmt.TypeOpenMetrics && len(got) != 0 {
						t.Errorf("nothing asked, wrote %q", got)
					}
				}
			})
		}
	}
}

func TestStreamEmpty(t *testing.T) {
	s := New(Options{Config: config(time.Minute)})
	for _, wf := range streamFormats {
		t.Run(wf.name, func(t *testing.T) {
			got := streamEncode(t, wf.f, s, nil)
			if want := streamExpfmt(t, wf.f, nil); !bytes.Equal(got, want) {
				t.Errorf("no data wrote %q, expfmt %q", got, want)
			}
		})
	}
}
