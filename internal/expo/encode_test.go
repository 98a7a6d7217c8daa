package expo_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/internal/expo/expotest"
)

// The Encoder must say exactly what client_golang's registry + expfmt say.
// Every test below writes the same samples both ways, parses both outputs
// back with prometheus/common's own parsers (text, OpenMetrics 1.0,
// delimited protobuf) and compares the families, with the helpers of
// package expotest (shared with the tests of the metrics package). This is an
// external test package because expotest imports expo.

// histOpts are the options of the daemon's duration histograms (classic
// buckets and native ones, metrics.HistogramOpts), so the histograms here
// carry both kinds of buckets.
func histOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name: name, Help: help,
		Buckets:                         durationBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: 0,
	}
}

var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// testFam is a Family with its name, help, type and label names, for
// building samples both ways.
type testFam struct {
	*expo.Family
	name, help string
	typ        dto.MetricType
	labels     []string
}

func newTestFam(name, help string, typ dto.MetricType, labels ...string) *testFam {
	return &testFam{expo.NewFamily(name, help, typ, labels), name, help, typ, labels}
}

// pairs are values (in label-name order) as sorted pairs, as package
// metrics builds them.
func (f *testFam) pairs(values []string) expo.LabelPairs {
	var p expo.LabelPairs
	for i, n := range f.labels {
		p = p.With(n, values[i])
	}
	return p
}

type sample struct {
	f      *testFam
	values []string
	v      float64 // value, or a summary's sum
	count  uint64
	qs, vs []float64
	m      prometheus.Metric // a client_golang metric (a histogram child)
}

// samples go to an Emitter (the Encoder) or, as client_golang constant
// metrics built independently of package expo, to a registry.
type samples []sample

func (ss samples) emit(e expo.Emitter) {
	for _, s := range ss {
		switch {
		case s.m != nil:
			e.Metric(s.f.Family, s.m)
		case s.f.typ == dto.MetricType_COUNTER:
			e.Counter(s.f.Family, s.f.pairs(s.values), s.v)
		case s.f.typ == dto.MetricType_GAUGE:
			e.Gauge(s.f.Family, s.f.pairs(s.values), s.v)
		case s.f.typ == dto.MetricType_SUMMARY:
			e.Summary(s.f.Family, s.f.pairs(s.values), s.count, s.v, s.qs, s.vs)
		default:
			panic("unexpected sample")
		}
	}
}

func (ss samples) Describe(chan<- *prometheus.Desc) {}

func (ss samples) Collect(ch chan<- prometheus.Metric) {
	for _, s := range ss {
		switch {
		case s.m != nil:
			ch <- s.m
		case s.f.typ == dto.MetricType_COUNTER:
			ch <- prometheus.MustNewConstMetric(s.f.Desc(), prometheus.CounterValue, s.v, s.values...)
		case s.f.typ == dto.MetricType_GAUGE:
			ch <- prometheus.MustNewConstMetric(s.f.Desc(), prometheus.GaugeValue, s.v, s.values...)
		case s.f.typ == dto.MetricType_SUMMARY:
			q := map[float64]float64{}
			for i := range s.qs {
				q[s.qs[i]] = s.vs[i]
			}
			ch <- prometheus.MustNewConstSummary(s.f.Desc(), s.count, s.v, q, s.values...)
		}
	}
}

// chanEmitted collects what ChanEmitter (the registry path of this
// package's collectors) makes of the samples.
type chanEmitted samples

func (c chanEmitted) Describe(chan<- *prometheus.Desc)    {}
func (c chanEmitted) Collect(ch chan<- prometheus.Metric) { samples(c).emit(expo.ChanEmitter(ch)) }

var specialValues = []float64{0, 1, -1, 0.5, 1e-9, 1e21, 12345678, math.NaN(), math.Inf(+1), math.Inf(-1)}

// Help with every character the formats escape (OpenMetrics also escapes
// the quote, the text format does not).
const trickyHelp = "Help with a back\\slash, a \"quote\" and a\nnewline."

func valueSamples() samples {
	g := newTestFam("test_gauge_value", trickyHelp, dto.MetricType_GAUGE, "case")
	var ss samples
	for i, v := range specialValues {
		ss = append(ss, sample{f: g, values: []string{fmt.Sprint(i)}, v: v})
	}
	return ss
}

// counterSamples are the counter values OpenMetrics allows (not negative,
// not NaN); the others are in TestEncoderCounterOddValues.
func counterSamples() samples {
	c := newTestFam("test_events_total", trickyHelp, dto.MetricType_COUNTER, "case")
	var ss samples
	for i, v := range specialValues {
		if v < 0 || math.IsNaN(v) {
			continue
		}
		ss = append(ss, sample{f: c, values: []string{fmt.Sprint(i)}, v: v})
	}
	return ss
}

func labelSamples() samples {
	// Label names not in sorted order: pairs and const metrics sort them.
	f := newTestFam("test_label_escaping", "Label values.", dto.MetricType_GAUGE, "path", "check", "a_b")
	vals := [][]string{
		{`back\slash`, `"quoted"`, "x"},
		{"new\nline", "", "y"},
		{"Grüße, 世界 🚀", `\"` + "\n" + `\n`, "z"},
		{"", "", ""},
		{`trailing\`, `"`, "\\\\"},
		{"tab\there", "{curly=\"x\"}", "a,b=c"},
	}
	var ss samples
	for i, v := range vals {
		ss = append(ss, sample{f: f, values: v, v: float64(i)})
	}
	return ss
}

func summarySamples() samples {
	s := newTestFam("test_latency_seconds", trickyHelp, dto.MetricType_SUMMARY, "check")
	plain := newTestFam("test_plain_summary", "A summary without labels.", dto.MetricType_SUMMARY)
	qs := []float64{0.5, 0.9, 0.99}
	return samples{
		{f: s, values: []string{"shop"}, count: 12345678, v: 4321.5, qs: qs, vs: []float64{0.1, 0.25, 0.75}},
		{f: s, values: []string{"idle"}, count: 0, v: 0, qs: qs, vs: []float64{math.NaN(), math.NaN(), math.NaN()}},
		{f: s, values: []string{`we"ird\` + "\n"}, count: 1, v: 1e-9, qs: qs, vs: []float64{1e-9, 1e-9, 1e21}},
		{f: plain, count: 3, v: 1.5, qs: qs, vs: []float64{0.5, 0.5, 0.5}},
	}
}

func scalarSamples() samples {
	g := newTestFam("test_scalar", "A gauge without labels.", dto.MetricType_GAUGE)
	c := newTestFam("test_unlabelled_total", "", dto.MetricType_COUNTER)
	return samples{{f: g, v: 42}, {f: c, v: 7}}
}

// histogramSamples are children of a client_golang HistogramVec with this
// package's options (classic and native buckets).
func histogramSamples() samples {
	f := newTestFam("test_duration_seconds", trickyHelp, dto.MetricType_HISTOGRAM, "check", "path")
	hv := prometheus.NewHistogramVec(histOpts(f.name, f.help), f.labels)
	rng := rand.New(rand.NewPCG(1, 2))
	shop := hv.WithLabelValues("shop", "direct")
	for range 5000 {
		shop.Observe(rng.ExpFloat64() * 0.2)
	}
	hv.WithLabelValues("cdn", "direct").Observe(0) // the zero bucket
	weird := hv.WithLabelValues(`we"ird\`+"\n", "via proxy")
	for _, v := range []float64{75, 3600, 1e-12, 61} { // past the last classic bucket
		weird.Observe(v)
	}
	hv.WithLabelValues("idle", "direct") // never observed
	var ss samples
	for _, lv := range [][]string{{"shop", "direct"}, {"cdn", "direct"}, {`we"ird\` + "\n", "via proxy"}, {"idle", "direct"}} {
		ss = append(ss, sample{f: f, m: hv.WithLabelValues(lv...).(prometheus.Metric)})
	}
	big := largeBuckets()
	bf := newTestFam("test_payload_bytes", "Classic buckets only, some bounds large integers.", dto.MetricType_HISTOGRAM, "kind")
	return append(ss, sample{f: bf, m: big.WithLabelValues("upload").(prometheus.Metric)})
}

// largeBuckets is a classic histogram whose bounds include integers that
// %g spells with an exponent (1e+06): as le values, their spelling is
// part of the series.
func largeBuckets() *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_payload_bytes",
		Help:    "Classic buckets only, some bounds large integers.",
		Buckets: []float64{0.5, 1, 100, 123456, 1e6, 2.5e9, 1e14, 1e15, 1e16}}, []string{"kind"})
	for _, v := range []float64{0.25, 3, 2e6, 5e14, 3e16} {
		h.WithLabelValues("upload").Observe(v)
	}
	return h
}

func TestEncoderMatchesExpfmt(t *testing.T) {
	cases := []struct {
		name string
		ss   samples
	}{
		{"gauge values", valueSamples()},
		{"counter values", counterSamples()},
		{"label escaping", labelSamples()},
		{"summaries", summarySamples()},
		{"unlabelled", scalarSamples()},
		{"histograms", histogramSamples()},
		{"families in sequence", slices.Concat(valueSamples(), counterSamples(), labelSamples(),
			summarySamples(), scalarSamples(), histogramSamples())},
	}
	for _, c := range cases {
		gathered := expotest.Gather(t, c.ss)
		if len(gathered) == 0 {
			t.Fatalf("%s: nothing gathered", c.name)
		}
		for _, wf := range expotest.WireFormats {
			t.Run(c.name+"/"+wf.Name, func(t *testing.T) {
				got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { c.ss.emit(e) })
				want := expotest.Expfmt(t, wf.Format, gathered)
				mfs := expotest.CheckEquivalent(t, wf.Format, got, want, gathered)
				if len(mfs) != len(gathered) {
					t.Errorf("decoded %d families, gathered %d", len(mfs), len(gathered))
				}
			})
		}
	}
}

// TestEncoderValuesSurvive checks the decoded values themselves, so that a
// value both paths lost (or a NaN proto.Equal would excuse) is caught.
func TestEncoderValuesSurvive(t *testing.T) {
	ss := slices.Concat(valueSamples(), labelSamples(), summarySamples(), histogramSamples())
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			mfs, err := expotest.Decode(wf.Format, expotest.Encode(t, wf.Format, func(e *expo.Encoder) { ss.emit(e) }))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range specialValues {
				m := expotest.FindMetric(mfs, "test_gauge_value", "case", fmt.Sprint(i))
				got := m.GetGauge().GetValue()
				if m == nil || !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
					t.Errorf("gauge case %d = %v (present %v), want %v", i, got, m != nil, want)
				}
			}
			for _, s := range labelSamples() {
				m := expotest.FindMetric(mfs, "test_label_escaping", "a_b", s.values[2])
				if m == nil {
					t.Errorf("label set %q missing", s.values)
					continue
				}
				got := map[string]string{}
				for _, lp := range m.Label {
					got[lp.GetName()] = lp.GetValue()
				}
				if got["path"] != s.values[0] || got["check"] != s.values[1] || len(got) != 3 {
					t.Errorf("labels %q decoded as %q", s.values, got)
				}
			}
			for _, mf := range mfs {
				if mf.GetName() == "test_gauge_value" && mf.GetHelp() != trickyHelp {
					t.Errorf("help decoded as %q", mf.GetHelp())
				}
			}
			sm := expotest.FindMetric(mfs, "test_latency_seconds", "check", "shop").GetSummary()
			if sm.GetSampleCount() != 12345678 || sm.GetSampleSum() != 4321.5 || len(sm.GetQuantile()) != 3 ||
				sm.GetQuantile()[2].GetQuantile() != 0.99 || sm.GetQuantile()[2].GetValue() != 0.75 {
				t.Errorf("summary decoded as %v", sm)
			}
			if q := expotest.FindMetric(mfs, "test_latency_seconds", "check", "idle").GetSummary().GetQuantile(); len(q) != 3 || !math.IsNaN(q[0].GetValue()) {
				t.Errorf("NaN quantiles decoded as %v", q)
			}
			h := expotest.FindMetric(mfs, "test_duration_seconds", "check", "shop").GetHistogram()
			if h.GetSampleCount() != 5000 || len(h.GetBucket()) < len(durationBuckets) {
				t.Errorf("histogram decoded with count %d and %d buckets", h.GetSampleCount(), len(h.GetBucket()))
			}
			if wf.Format.FormatType() == expfmt.TypeProtoDelim && (len(h.GetPositiveSpan()) == 0 || len(h.GetPositiveDelta()) == 0) {
				t.Errorf("native histogram lost in protobuf: %v", h)
			}
		})
	}
}

// TestEncoderCounterOddValues: negative and NaN counters are nonsense that
// OpenMetrics parsers reject, but the Encoder must still write them as
// expfmt does.
func TestEncoderCounterOddValues(t *testing.T) {
	c := newTestFam("test_odd_total", "Odd counters.", dto.MetricType_COUNTER, "case")
	var ss samples
	for i, v := range specialValues {
		ss = append(ss, sample{f: c, values: []string{fmt.Sprint(i)}, v: v})
	}
	gathered := expotest.Gather(t, ss)
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { ss.emit(e) })
			want := expotest.Expfmt(t, wf.Format, gathered)
			if wf.Format.FormatType() != expfmt.TypeOpenMetrics {
				expotest.CheckEquivalent(t, wf.Format, got, want, gathered)
				return
			}
			expotest.CheckOpenMetricsFraming(t, got)
			expotest.CheckLines(t, got, want)
			_, gErr := expotest.Decode(wf.Format, got)
			_, wErr := expotest.Decode(wf.Format, want)
			if gErr == nil || wErr == nil {
				t.Errorf("a NaN or negative counter parsed: Encoder %v, expfmt %v", gErr, wErr)
			}
		})
	}
}

// TestEncoderCounterWithoutTotal: OpenMetrics counters are named without
// _total with samples named with it; a counter whose name lacks _total
// cannot be one, and expfmt declares it unknown.
func TestEncoderCounterWithoutTotal(t *testing.T) {
	c := newTestFam("test_requests", "A counter without _total.", dto.MetricType_COUNTER, "code")
	ss := samples{{f: c, values: []string{"200"}, v: 3}, {f: c, values: []string{"500"}, v: 0}}
	gathered := expotest.Gather(t, ss)
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { ss.emit(e) })
			expotest.CheckEquivalent(t, wf.Format, got, expotest.Expfmt(t, wf.Format, gathered), gathered)
		})
	}
}

// TestChanEmitterMatchesConstMetrics: the registry path of package metrics'
// collectors (ChanEmitter's cached-label metrics) gathers to exactly what
// client_golang's own constant metrics do.
func TestChanEmitterMatchesConstMetrics(t *testing.T) {
	ss := slices.Concat(valueSamples(), counterSamples(), labelSamples(), summarySamples(), scalarSamples(), histogramSamples())
	if d := expotest.Diff(expotest.Gather(t, chanEmitted(ss)), expotest.Gather(t, ss)); d != "" {
		t.Error(d)
	}
}

func TestEncoderOmitsEmptyFamilies(t *testing.T) {
	ss := scalarSamples()
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			empty := expotest.Encode(t, wf.Format, func(e *expo.Encoder) {
				e.WriteFamily(&dto.MetricFamily{Name: proto.String("test_empty"), Help: proto.String("h"),
					Type: dto.MetricType_GAUGE.Enum()})
			})
			want := expotest.Expfmt(t, wf.Format, nil)
			if !bytes.Equal(empty, want) {
				t.Errorf("empty output %q, expfmt writes %q", empty, want)
			}
			if wf.Format.FormatType() == expfmt.TypeOpenMetrics && string(empty) != "# EOF\n" {
				t.Errorf("empty OpenMetrics output %q, want just # EOF", empty)
			}
			got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) {
				e.WriteFamily(&dto.MetricFamily{Name: proto.String("test_empty"), Type: dto.MetricType_COUNTER.Enum()})
				ss.emit(e)
				e.WriteFamily(&dto.MetricFamily{Name: proto.String("test_empty_too"), Type: dto.MetricType_SUMMARY.Enum()})
			})
			if bytes.Contains(got, []byte("test_empty")) {
				t.Errorf("a family without samples was written:\n%q", got)
			}
			gathered := expotest.Gather(t, ss)
			expotest.CheckEquivalent(t, wf.Format, got, expotest.Expfmt(t, wf.Format, gathered), gathered)
		})
	}
}

// TestGrouper: gauge families interleaved with one other family come out
// contiguous: the other family as it comes, then the held gauges family by
// family in order of first appearance. The result parses like the
// registry's output; without the Grouper the same sequence is invalid (the
// parsers see a family twice).
func TestGrouper(t *testing.T) {
	gA := valueSamples()
	gB := labelSamples()
	others := []struct {
		name string
		ss   samples
		typ  string // the other family's name on its TYPE line
	}{
		{"summary", summarySamples()[:3], "test_latency_seconds"},
		{"histogram", histogramSamples()[:3], "test_duration_seconds"},
		{"counter", counterSamples()[:3], "test_events_total"},
	}
	for _, o := range others {
		x := o.ss
		interleaved := samples{gA[0], x[0], gB[0], gA[1], x[1], gB[1], gB[2], gA[2], x[2], gA[3]}
		gathered := expotest.Gather(t, interleaved)
		if len(gathered) != 3 {
			t.Fatalf("%s: gathered %d families, want 3", o.name, len(gathered))
		}
		for _, wf := range expotest.WireFormats {
			t.Run(o.name+"/"+wf.Name, func(t *testing.T) {
				got := expotest.Encode(t, wf.Format, func(e *expo.Encoder) {
					g := expo.Grouper{Out: e}
					interleaved.emit(&g)
					g.Flush()
					g.Flush() // Flush empties the Grouper: this writes nothing
				})
				expotest.CheckEquivalent(t, wf.Format, got, expotest.Expfmt(t, wf.Format, gathered), gathered)
				if wf.Format.FormatType() == expfmt.TypeProtoDelim {
					// Three families, each once (the decoder would return a
					// repeated family twice).
					if mfs, err := expotest.Decode(wf.Format, got); err != nil || len(mfs) != 3 {
						t.Errorf("decoded %d families (%v), want 3", len(mfs), err)
					}
					return
				}
				var order []string
				for _, l := range strings.Split(string(got), "\n") {
					if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
						order = append(order, strings.Fields(rest)[0])
					}
				}
				other := o.typ
				if wf.Format.FormatType() == expfmt.TypeOpenMetrics {
					other = strings.TrimSuffix(other, "_total")
				}
				if want := []string{other, "test_gauge_value", "test_label_escaping"}; !slices.Equal(order, want) {
					t.Errorf("family order %v, want %v", order, want)
				}
				// Negative control: interleaved straight into an Encoder, a
				// family appears twice and the parser rejects it.
				bad := expotest.Encode(t, wf.Format, func(e *expo.Encoder) { interleaved.emit(e) })
				if _, err := expotest.Decode(wf.Format, bad); err == nil {
					t.Errorf("interleaved output parsed without error:\n%s", bad)
				}
			})
		}
	}
}

// TestWriteFamilyGoProcess: the Go and process collectors (and one of each
// other client_golang kind) through WriteFamily say what expfmt says.
func TestWriteFamilyGoProcess(t *testing.T) {
	hv := prometheus.NewHistogramVec(histOpts("test_wait_seconds", trickyHelp), []string{"kind"})
	for i := range 300 {
		hv.WithLabelValues("a").Observe(float64(i) / 100)
	}
	hv.WithLabelValues("b")
	sv := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "test_size_bytes", Help: "Sizes.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}}, []string{"kind"})
	for i := range 100 {
		sv.WithLabelValues("x").Observe(float64(i))
	}
	sv.WithLabelValues("empty") // NaN quantiles
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_hits_total", Help: "Hits."}, []string{"code"})
	cv.WithLabelValues("200").Add(5)
	unit := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_temperature_celsius", Help: "With a unit.", Unit: "celsius"})
	unit.Set(21.5)
	untyped := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "test_untyped", Help: "Untyped."}, func() float64 { return 2.5 })
	noTotal := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "test_uptime_seconds", Help: "A counter without _total."},
		func() float64 { return 99 })
	gathered := expotest.Gather(t, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		hv, sv, cv, unit, untyped, noTotal, largeBuckets())
	types := map[dto.MetricType]bool{}
	units := 0
	for _, mf := range gathered {
		types[mf.GetType()] = true
		if mf.Unit != nil {
			units++
		}
	}
	if len(types) != 5 || units == 0 {
		t.Fatalf("gathered types %v and %d units; want all five types and some units", types, units)
	}
	writeAll := func(mfs []*dto.MetricFamily) func(e *expo.Encoder) {
		return func(e *expo.Encoder) {
			for _, mf := range mfs {
				e.WriteFamily(mf)
			}
		}
	}
	for _, wf := range expotest.WireFormats {
		t.Run(wf.Name, func(t *testing.T) {
			mfs := gathered
			if wf.Format.FormatType() == expfmt.TypeOpenMetrics {
				got, want := expotest.Encode(t, wf.Format, writeAll(mfs)), expotest.Expfmt(t, wf.Format, mfs)
				expotest.CheckOpenMetricsFraming(t, got)
				expotest.CheckLines(t, got, want)
				// The gauge go_memstats_alloc_bytes and the counter
				// go_memstats_alloc_bytes_total are both family
				// go_memstats_alloc_bytes in OpenMetrics, which the parser
				// rejects in expfmt's output too: parse the others.
				mfs = expotest.FilterFamilies(mfs, func(n string) bool { return n != "go_memstats_alloc_bytes" })
			}
			expotest.CheckEquivalent(t, wf.Format, expotest.Encode(t, wf.Format, writeAll(mfs)), expotest.Expfmt(t, wf.Format, mfs), mfs)
		})
	}
}

// TestNewEncoderFormats: the formats the Encoder declines are left to expfmt.
func TestNewEncoderFormats(t *testing.T) {
	for _, f := range []expfmt.Format{expfmt.FmtProtoText, expfmt.FmtProtoCompact, expfmt.FmtUnknown} {
		if _, ok := expo.NewEncoder(io.Discard, f); ok {
			t.Errorf("NewEncoder accepted %q", f)
		}
	}
	for _, f := range []expfmt.Format{expfmt.FmtText, expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtProtoDelim,
		expfmt.FmtText.WithEscapingScheme(model.UnderscoreEscaping)} {
		if _, ok := expo.NewEncoder(io.Discard, f); !ok {
			t.Errorf("NewEncoder refused %q", f)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("broken pipe")
}

func TestEncoderWriteError(t *testing.T) {
	w := &failWriter{}
	e, _ := expo.NewEncoder(w, expfmt.FmtText)
	ss := valueSamples()
	ss.emit(e)
	if err := e.Close(); err == nil || e.Err() == nil {
		t.Fatalf("Close = %v, Err = %v; want the write error", err, e.Err())
	}
	n := w.n
	ss.emit(e)
	_ = e.Close()
	if w.n != n {
		t.Errorf("%d more writes after the error", w.n-n)
	}
}
