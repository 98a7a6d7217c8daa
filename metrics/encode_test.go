package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// The Encoder must say exactly what client_golang's registry + expfmt say.
// Every test below writes the same samples both ways, parses both outputs
// back with prometheus/common's own parsers (text, OpenMetrics 1.0,
// delimited protobuf) and compares the families.

var wireFormats = []struct {
	name string
	f    expfmt.Format
}{
	{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
	{"openmetrics", expfmt.NewFormat(expfmt.TypeOpenMetrics)},
	{"openmetrics-0.0.1", expfmt.FmtOpenMetrics_0_0_1},
	{"proto", expfmt.NewFormat(expfmt.TypeProtoDelim)},
}

// encodeWith runs fn against an Encoder for format and returns its output.
func encodeWith(t *testing.T, format expfmt.Format, fn func(e *Encoder)) []byte {
	t.Helper()
	var buf bytes.Buffer
	e, ok := NewEncoder(&buf, format)
	if !ok {
		t.Fatalf("NewEncoder refused %q", format)
	}
	fn(e)
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// expfmtEncode is the reference: expfmt's encoder over gathered families.
func expfmtEncode(t *testing.T, format expfmt.Format, mfs []*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("expfmt Encode %s: %v", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// gatherAll registers cs in a pedantic registry and gathers them.
func gatherAll(t *testing.T, cs ...prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		reg.MustRegister(c)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	return mfs
}

// decodeAll parses b in format with prometheus/common's parsers.
func decodeAll(format expfmt.Format, b []byte) ([]*dto.MetricFamily, error) {
	if format.FormatType() == expfmt.TypeTextPlain {
		p := expfmt.NewTextParser(model.UTF8Validation)
		m, err := p.TextToMetricFamilies(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		out := make([]*dto.MetricFamily, 0, len(m))
		for _, mf := range m {
			out = append(out, mf)
		}
		return out, nil
	}
	dec := expfmt.NewDecoder(bytes.NewReader(b), format)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, mf)
	}
}

func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, lp := range m.GetLabel() {
		b.WriteString(lp.GetName())
		b.WriteByte(0)
		b.WriteString(lp.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

// normalize returns copies sorted by family name and label set, with each
// metric's labels and quantiles sorted (their order carries no meaning).
func normalize(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, len(mfs))
	for i, mf := range mfs {
		mf = proto.Clone(mf).(*dto.MetricFamily)
		for _, m := range mf.Metric {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
			if s := m.GetSummary(); s != nil {
				slices.SortFunc(s.Quantile, func(a, b *dto.Quantile) int {
					return cmpFloat(a.GetQuantile(), b.GetQuantile())
				})
			}
		}
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a), labelKey(b)) })
		out[i] = mf
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func familyNames(mfs []*dto.MetricFamily) []string {
	var n []string
	for _, mf := range mfs {
		n = append(n, mf.GetName())
	}
	slices.Sort(n)
	return n
}

// sameFamilies reports how got and want differ ("" when they do not).
// proto.Equal treats NaN as equal to NaN, which is what we want here; the
// tests check separately that NaN survives at all.
func sameFamilies(got, want []*dto.MetricFamily) string {
	got, want = normalize(got), normalize(want)
	if g, w := familyNames(got), familyNames(want); !slices.Equal(g, w) {
		return fmt.Sprintf("families differ:\n got %v\nwant %v", g, w)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return fmt.Sprintf("family %s differs:\n got %s\nwant %s", got[i].GetName(),
				prototext.Format(got[i]), prototext.Format(want[i]))
		}
	}
	return ""
}

// checkLines compares two text or OpenMetrics outputs line by line, in any
// order: comment lines, and each sample's series (name and label string,
// le and quantile included: a Prometheus 2 server keeps label values as
// spelt) byte for byte; sample values as numbers, since "12345678" and
// "1.2345678e+07" are the same value.
func checkLines(t *testing.T, got, want []byte) {
	t.Helper()
	type line struct{ key, val string }
	split := func(b []byte) []line {
		var out []line
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "#") || l == "" {
				out = append(out, line{key: l})
				continue
			}
			i := strings.LastIndexByte(l, ' ')
			out = append(out, line{l[:i], l[i+1:]})
		}
		slices.SortFunc(out, func(a, b line) int {
			if c := strings.Compare(a.key, b.key); c != 0 {
				return c
			}
			return strings.Compare(a.val, b.val)
		})
		return out
	}
	g, w := split(got), split(want)
	if len(g) != len(w) {
		t.Errorf("%d lines, expfmt wrote %d", len(g), len(w))
		return
	}
	for i := range g {
		if g[i].key != w[i].key {
			t.Errorf("line %q, expfmt wrote %q", g[i].key, w[i].key)
			return
		}
		if g[i].val == "" && w[i].val == "" {
			continue // a comment or the final newline
		}
		gv, gErr := strconv.ParseFloat(g[i].val, 64)
		wv, wErr := strconv.ParseFloat(w[i].val, 64)
		if gErr != nil || wErr != nil || !(gv == wv || math.IsNaN(gv) && math.IsNaN(wv)) {
			t.Errorf("%s: value %q, expfmt wrote %q", g[i].key, g[i].val, w[i].val)
		}
	}
}

// checkEquivalent asserts that got (the Encoder's output) means what want
// (expfmt's output for gathered) means in format, and returns the decoded
// families of got.
func checkEquivalent(t *testing.T, format expfmt.Format, got, want []byte, gathered []*dto.MetricFamily) []*dto.MetricFamily {
	t.Helper()
	gotMF, err := decodeAll(format, got)
	if err != nil {
		t.Fatalf("parsing the Encoder's output: %v\n%s", err, got)
	}
	wantMF, err := decodeAll(format, want)
	if err != nil {
		t.Fatalf("parsing expfmt's output: %v\n%s", err, want)
	}
	// The reference itself must hold what was gathered, or the comparison
	// proves nothing.
	if g, w := familyNames(wantMF), familyNames(gathered); !slices.Equal(g, w) {
		t.Fatalf("reference parsed to %v, gathered %v", g, w)
	}
	if d := sameFamilies(gotMF, wantMF); d != "" {
		if format.FormatType() == expfmt.TypeProtoDelim {
			t.Errorf("Encoder and expfmt disagree: %s", d)
		} else {
			t.Errorf("Encoder and expfmt disagree: %s\nEncoder output:\n%s\nexpfmt output:\n%s", d, got, want)
		}
	}
	switch format.FormatType() {
	case expfmt.TypeProtoDelim:
		// Protobuf loses nothing: the decoded families are the gathered ones.
		if d := sameFamilies(gotMF, gathered); d != "" {
			t.Errorf("decoded protobuf is not what was gathered: %s", d)
		}
	case expfmt.TypeOpenMetrics:
		checkOpenMetricsFraming(t, got)
		checkLines(t, got, want)
	case expfmt.TypeTextPlain:
		if bytes.Contains(got, []byte("# EOF")) {
			t.Errorf("text output has an OpenMetrics # EOF:\n%s", got)
		}
		checkLines(t, got, want)
	}
	return gotMF
}

// checkOpenMetricsFraming checks OpenMetrics rules byte by byte: exactly
// one "# EOF\n", last; counters' TYPE/HELP name drops _total while their
// samples keep it; every float value has a "." or an "e".
func checkOpenMetricsFraming(t *testing.T, b []byte) {
	t.Helper()
	s := string(b)
	if !strings.HasSuffix(s, "# EOF\n") || strings.Count(s, "# EOF") != 1 {
		t.Errorf("OpenMetrics output must end with exactly one \"# EOF\\n\":\n%q", s)
	}
	var fam, typ string // of the last TYPE line
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			fam, typ, _ = strings.Cut(rest, " ")
			if typ == "counter" && strings.HasSuffix(fam, "_total") {
				t.Errorf("counter TYPE line keeps _total: %q", l)
			}
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		name := l[:strings.IndexAny(l, "{ ")]
		if typ == "counter" && name != fam+"_total" {
			t.Errorf("sample %q in counter family %s", l, fam)
		}
		v := l[strings.LastIndexByte(l, ' ')+1:]
		isCount := strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_bucket")
		if !isCount && !strings.ContainsAny(v, ".e") && v != "NaN" && v != "+Inf" && v != "-Inf" {
			t.Errorf("OpenMetrics float without . or e: %q", l)
		}
	}
}

// testFam is a Family with its label names, for building samples both ways.
type testFam struct {
	*Family
	labels []string
}

func newTestFam(name, help string, typ dto.MetricType, labels ...string) *testFam {
	return &testFam{NewFamily(name, help, typ, labels), labels}
}

// pairs are values (in label-name order) as sorted pairs, as this package
// builds them.
func (f *testFam) pairs(values []string) LabelPairs {
	var p LabelPairs
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
// metrics built independently of this package, to a registry.
type samples []sample

func (ss samples) emit(e Emitter) {
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
func (c chanEmitted) Collect(ch chan<- prometheus.Metric) { samples(c).emit(ChanEmitter(ch)) }

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
	hv := prometheus.NewHistogramVec(HistogramOpts(f.name, f.help), f.labels)
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

func findMetric(mfs []*dto.MetricFamily, name, label, value string) *dto.Metric {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label && lp.GetValue() == value {
					return m
				}
			}
		}
	}
	return nil
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
		gathered := gatherAll(t, c.ss)
		if len(gathered) == 0 {
			t.Fatalf("%s: nothing gathered", c.name)
		}
		for _, wf := range wireFormats {
			t.Run(c.name+"/"+wf.name, func(t *testing.T) {
				got := encodeWith(t, wf.f, func(e *Encoder) { c.ss.emit(e) })
				want := expfmtEncode(t, wf.f, gathered)
				mfs := checkEquivalent(t, wf.f, got, want, gathered)
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
	for _, wf := range wireFormats {
		t.Run(wf.name, func(t *testing.T) {
			mfs, err := decodeAll(wf.f, encodeWith(t, wf.f, func(e *Encoder) { ss.emit(e) }))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range specialValues {
				m := findMetric(mfs, "test_gauge_value", "case", fmt.Sprint(i))
				got := m.GetGauge().GetValue()
				if m == nil || !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
					t.Errorf("gauge case %d = %v (present %v), want %v", i, got, m != nil, want)
				}
			}
			for _, s := range labelSamples() {
				m := findMetric(mfs, "test_label_escaping", "a_b", s.values[2])
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
			sm := findMetric(mfs, "test_latency_seconds", "check", "shop").GetSummary()
			if sm.GetSampleCount() != 12345678 || sm.GetSampleSum() != 4321.5 || len(sm.GetQuantile()) != 3 ||
				sm.GetQuantile()[2].GetQuantile() != 0.99 || sm.GetQuantile()[2].GetValue() != 0.75 {
				t.Errorf("summary decoded as %v", sm)
			}
			if q := findMetric(mfs, "test_latency_seconds", "check", "idle").GetSummary().GetQuantile(); len(q) != 3 || !math.IsNaN(q[0].GetValue()) {
				t.Errorf("NaN quantiles decoded as %v", q)
			}
			h := findMetric(mfs, "test_duration_seconds", "check", "shop").GetHistogram()
			if h.GetSampleCount() != 5000 || len(h.GetBucket()) < len(durationBuckets) {
				t.Errorf("histogram decoded with count %d and %d buckets", h.GetSampleCount(), len(h.GetBucket()))
			}
			if wf.f.FormatType() == expfmt.TypeProtoDelim && (len(h.GetPositiveSpan()) == 0 || len(h.GetPositiveDelta()) == 0) {
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
	gathered := gatherAll(t, ss)
	for _, wf := range wireFormats {
		t.Run(wf.name, func(t *testing.T) {
			got := encodeWith(t, wf.f, func(e *Encoder) { ss.emit(e) })
			want := expfmtEncode(t, wf.f, gathered)
			if wf.f.FormatType() != expfmt.TypeOpenMetrics {
				checkEquivalent(t, wf.f, got, want, gathered)
				return
			}
			checkOpenMetricsFraming(t, got)
			checkLines(t, got, want)
			_, gErr := decodeAll(wf.f, got)
			_, wErr := decodeAll(wf.f, want)
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
	gathered := gatherAll(t, ss)
	for _, wf := range wireFormats {
		t.Run(wf.name, func(t *testing.T) {
			got := encodeWith(t, wf.f, func(e *Encoder) { ss.emit(e) })
			checkEquivalent(t, wf.f, got, expfmtEncode(t, wf.f, gathered), gathered)
		})
	}
}

// TestChanEmitterMatchesConstMetrics: the registry path of this package's
// collectors (ChanEmitter's cached-label metrics) gathers to exactly what
// client_golang's own constant metrics do.
func TestChanEmitterMatchesConstMetrics(t *testing.T) {
	ss := slices.Concat(valueSamples(), counterSamples(), labelSamples(), summarySamples(), scalarSamples(), histogramSamples())
	if d := sameFamilies(gatherAll(t, chanEmitted(ss)), gatherAll(t, ss)); d != "" {
		t.Error(d)
	}
}

func TestEncoderOmitsEmptyFamilies(t *testing.T) {
	ss := scalarSamples()
	for _, wf := range wireFormats {
		t.Run(wf.name, func(t *testing.T) {
			empty := encodeWith(t, wf.f, func(e *Encoder) {
				e.WriteFamily(&dto.MetricFamily{Name: proto.String("test_empty"), Help: proto.String("h"),
					Type: dto.MetricType_GAUGE.Enum()})
			})
			want := expfmtEncode(t, wf.f, nil)
			if !bytes.Equal(empty, want) {
				t.Errorf("empty output %q, expfmt writes %q", empty, want)
			}
			if wf.f.FormatType() == expfmt.TypeOpenMetrics && string(empty) != "# EOF\n" {
				t.Errorf("empty OpenMetrics output %q, want just # EOF", empty)
			}
			got := encodeWith(t, wf.f, func(e *Encoder) {
				e.WriteFamily(&dto.MetricFamily{Name: proto.String("test_empty"), Type: dto.MetricType_COUNTER.Enum()})
				ss.emit(e)
				e.WriteFamily(&dto.MetricFamily{Name: proto.String("test_empty_too"), Type: dto.MetricType_SUMMARY.Enum()})
			})
			if bytes.Contains(got, []byte("test_empty")) {
				t.Errorf("a family without samples was written:\n%q", got)
			}
			gathered := gatherAll(t, ss)
			checkEquivalent(t, wf.f, got, expfmtEncode(t, wf.f, gathered), gathered)
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
		gathered := gatherAll(t, interleaved)
		if len(gathered) != 3 {
			t.Fatalf("%s: gathered %d families, want 3", o.name, len(gathered))
		}
		for _, wf := range wireFormats {
			t.Run(o.name+"/"+wf.name, func(t *testing.T) {
				got := encodeWith(t, wf.f, func(e *Encoder) {
					g := Grouper{Out: e}
					interleaved.emit(&g)
					g.Flush()
					g.Flush() // Flush empties the Grouper: this writes nothing
				})
				checkEquivalent(t, wf.f, got, expfmtEncode(t, wf.f, gathered), gathered)
				if wf.f.FormatType() == expfmt.TypeProtoDelim {
					// Three families, each once (the decoder would return a
					// repeated family twice).
					if mfs, err := decodeAll(wf.f, got); err != nil || len(mfs) != 3 {
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
				if wf.f.FormatType() == expfmt.TypeOpenMetrics {
					other = strings.TrimSuffix(other, "_total")
				}
				if want := []string{other, "test_gauge_value", "test_label_escaping"}; !slices.Equal(order, want) {
					t.Errorf("family order %v, want %v", order, want)
				}
				// Negative control: interleaved straight into an Encoder, a
				// family appears twice and the parser rejects it.
				bad := encodeWith(t, wf.f, func(e *Encoder) { interleaved.emit(e) })
				if _, err := decodeAll(wf.f, bad); err == nil {
					t.Errorf("interleaved output parsed without error:\n%s", bad)
				}
			})
		}
	}
}

// TestWriteFamilyGoProcess: the Go and process collectors (and one of each
// other client_golang kind) through WriteFamily say what expfmt says.
func TestWriteFamilyGoProcess(t *testing.T) {
	hv := prometheus.NewHistogramVec(HistogramOpts("test_wait_seconds", trickyHelp), []string{"kind"})
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
	gathered := gatherAll(t, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
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
	writeAll := func(mfs []*dto.MetricFamily) func(e *Encoder) {
		return func(e *Encoder) {
			for _, mf := range mfs {
				e.WriteFamily(mf)
			}
		}
	}
	for _, wf := range wireFormats {
		t.Run(wf.name, func(t *testing.T) {
			mfs := gathered
			if wf.f.FormatType() == expfmt.TypeOpenMetrics {
				got, want := encodeWith(t, wf.f, writeAll(mfs)), expfmtEncode(t, wf.f, mfs)
				checkOpenMetricsFraming(t, got)
				checkLines(t, got, want)
				// The gauge go_memstats_alloc_bytes and the counter
				// go_memstats_alloc_bytes_total are both family
				// go_memstats_alloc_bytes in OpenMetrics, which the parser
				// rejects in expfmt's output too: parse the others.
				mfs = filterFamilies(mfs, func(n string) bool { return n != "go_memstats_alloc_bytes" })
			}
			checkEquivalent(t, wf.f, encodeWith(t, wf.f, writeAll(mfs)), expfmtEncode(t, wf.f, mfs), mfs)
		})
	}
}

// TestNewEncoderFormats: the formats the Encoder declines are left to expfmt.
func TestNewEncoderFormats(t *testing.T) {
	for _, f := range []expfmt.Format{expfmt.FmtProtoText, expfmt.FmtProtoCompact, expfmt.FmtUnknown} {
		if _, ok := NewEncoder(io.Discard, f); ok {
			t.Errorf("NewEncoder accepted %q", f)
		}
	}
	for _, f := range []expfmt.Format{expfmt.FmtText, expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtProtoDelim,
		expfmt.FmtText.WithEscapingScheme(model.UnderscoreEscaping)} {
		if _, ok := NewEncoder(io.Discard, f); !ok {
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
	e, _ := NewEncoder(w, expfmt.FmtText)
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

// collectorFixture is a Collector with http (two steps, TLS cert), tcp and
// browser targets, label values that need escaping, and a forgotten target.
func collectorFixture(t *testing.T) *Collector {
	t.Helper()
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Global.Location = "ams1"
	cfg.Global.Labels = map[string]string{"team": `web"shop\` + "\nü"}
	cfg.Checks = []checks.Check{
		{Name: "shop-home", Type: "http", Labels: map[string]string{"route": "home"}},
		{Name: "cdn", Type: "tcp", Labels: map[string]string{"team": "cdn"}},
		{Name: "web", Type: "browser"},
		{Name: "gone", Type: "http"},
	}
	direct, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	a := &probe.Target{Key: "shop-home/direct/lb2", Check: &cfg.Checks[0], Path: direct,
		Node: &probe.Node{Name: "lb2", Addr: netip.MustParseAddr("10.0.0.12")}}
	a3 := &probe.Target{Key: "shop-home/direct/10.0.0.13", Check: &cfg.Checks[0], Path: direct,
		Node: &probe.Node{Addr: netip.MustParseAddr("10.0.0.13")}}
	b := &probe.Target{Key: "cdn/direct/", Check: &cfg.Checks[1], Path: direct}
	w := &probe.Target{Key: "web/direct/", Check: &cfg.Checks[2], Path: direct}
	gone := &probe.Target{Key: "gone/direct/", Check: &cfg.Checks[3], Path: direct}

	c := New(cfg)
	steps := []probe.StepResult{
		{Name: "login", StatusCode: 200, Phases: probe.Phases{DNS: 3 * time.Millisecond, HasDNS: true,
			Connect: time.Millisecond, TLS: 2 * time.Millisecond, HasTLS: true, Processing: 100 * time.Millisecond, Transfer: 5 * time.Millisecond}},
		{Name: "cart \"2\"", StatusCode: 302, Phases: probe.Phases{Connect: time.Millisecond, Processing: 7 * time.Millisecond}},
	}
	for i := range 40 {
		for _, tg := range []*probe.Target{a, a3} {
			c.Observe(&probe.Observation{Target: tg, Up: true, Outcome: &probe.Outcome{
				Result: probe.Success, Duration: time.Duration(i+1) * 7 * time.Millisecond,
				CertNotAfter: time.Unix(1900000000, 0), Steps: steps}})
		}
	}
	c.Observe(&probe.Observation{Target: a3, Up: true, Outcome: &probe.Outcome{Result: probe.Failure, Reason: "status"}})
	for _, r := range []probe.Result{probe.Error, probe.Timeout, probe.Failure, probe.Error} {
		c.Observe(&probe.Observation{Target: b, Up: false, Outcome: &probe.Outcome{Result: r}})
	}
	c.Observe(&probe.Observation{Target: w, Up: true, Outcome: &probe.Outcome{
		Result: probe.Success, Duration: time.Second,
		Steps: []probe.StepResult{
			{Name: "01-navigate", Result: probe.Success, Duration: 300 * time.Millisecond,
				Navigation: &probe.NavTiming{TTFB: 3 * time.Millisecond, DOMContentLoaded: 200 * time.Millisecond,
					Load: 250 * time.Millisecond, LCP: 400 * time.Millisecond}},
			{Name: "02-click", Result: probe.Failure, Duration: 50 * time.Millisecond},
		},
		Requests: []probe.Request{
			{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 10 * time.Millisecond},
			{Domain: "www.shop.test", Result: "ok", Status: 200, Duration: 30 * time.Millisecond},
			{Domain: "static.shop-cdn.test", Result: "http_error", Status: 503, Duration: 5 * time.Millisecond},
			{Domain: "ads.example", Result: "failed"},
		},
	}})
	c.Observe(&probe.Observation{Target: gone, Up: true, Outcome: &probe.Outcome{Result: probe.Success, Steps: steps,
		CertNotAfter: time.Unix(1800000000, 0)}})
	c.Forget(gone)
	return c
}

var collectorFamilies = []string{
	"vantage_browser_navigation_seconds", "vantage_browser_request_duration_seconds",
	"vantage_browser_requests_total", "vantage_browser_step_duration_seconds",
	"vantage_check_duration_seconds", "vantage_check_runs_total", "vantage_check_success",
	"vantage_check_up", "vantage_http_phase_seconds", "vantage_http_status_code",
	"vantage_tls_cert_not_after_timestamp_seconds",
}

func filterFamilies(mfs []*dto.MetricFamily, want func(string) bool) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		if want == nil || want(mf.GetName()) {
			out = append(out, mf)
		}
	}
	return out
}

// TestCollectorStreamMatchesRegistry: Collector.Stream into the Encoder
// says what registering the Collector and encoding with expfmt says, with
// and without a name filter.
func TestCollectorStreamMatchesRegistry(t *testing.T) {
	c := collectorFixture(t)
	all := gatherAll(t, c)
	if g := familyNames(all); !slices.Equal(g, collectorFamilies) {
		t.Fatalf("gathered %v, want %v", g, collectorFamilies)
	}
	names := c.FamilyNames()
	for _, n := range collectorFamilies {
		if !slices.Contains(names, n) {
			t.Errorf("FamilyNames lacks %s", n)
		}
	}
	if m := findMetric(all, "vantage_check_runs_total", "node", "lb2"); m == nil || m.GetCounter() == nil {
		t.Fatal("fixture has no runs counter for lb2")
	}
	filters := []struct {
		name  string
		names []string
	}{
		{"all", nil},
		{"some", []string{"vantage_check_up", "vantage_http_phase_seconds", "vantage_check_duration_seconds",
			"vantage_browser_requests_total", "vantage_browser_step_duration_seconds"}},
		{"one", []string{"vantage_tls_cert_not_after_timestamp_seconds"}},
		{"foreign", []string{"go_goroutines"}},
	}
	for _, fl := range filters {
		var want func(string) bool
		if fl.names != nil {
			want = func(n string) bool { return slices.Contains(fl.names, n) }
		}
		gathered := filterFamilies(all, want)
		for _, wf := range wireFormats {
			t.Run(fl.name+"/"+wf.name, func(t *testing.T) {
				got := encodeWith(t, wf.f, func(e *Encoder) { c.Stream(e, want) })
				mfs := checkEquivalent(t, wf.f, got, expfmtEncode(t, wf.f, gathered), gathered)
				for _, mf := range mfs {
					if want != nil && !want(mf.GetName()) {
						t.Errorf("family %s was not asked for", mf.GetName())
					}
				}
				if len(mfs) != len(gathered) {
					t.Errorf("%d families, want %d", len(mfs), len(gathered))
				}
			})
		}
	}
}

// TestCollectorStreamSparse: families without samples (no cert, no steps,
// no browser runs) appear in neither output; no targets means no output.
func TestCollectorStreamSparse(t *testing.T) {
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Checks = []checks.Check{{Name: "cdn", Type: "tcp"}}
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg)
	for _, wf := range wireFormats {
		got := encodeWith(t, wf.f, func(e *Encoder) { c.Stream(e, nil) })
		if want := expfmtEncode(t, wf.f, nil); !bytes.Equal(got, want) {
			t.Errorf("%s: no targets wrote %q, expfmt %q", wf.name, got, want)
		}
	}
	c.Observe(&probe.Observation{Target: &probe.Target{Key: "cdn/direct/", Check: &cfg.Checks[0], Path: p},
		Outcome: &probe.Outcome{Result: probe.Error}})
	gathered := gatherAll(t, c)
	wantNames := []string{"vantage_check_duration_seconds", "vantage_check_runs_total", "vantage_check_success", "vantage_check_up"}
	if g := familyNames(gathered); !slices.Equal(g, wantNames) {
		t.Fatalf("gathered %v, want %v", g, wantNames)
	}
	for _, wf := range wireFormats {
		t.Run(wf.name, func(t *testing.T) {
			got := encodeWith(t, wf.f, func(e *Encoder) { c.Stream(e, nil) })
			checkEquivalent(t, wf.f, got, expfmtEncode(t, wf.f, gathered), gathered)
			for _, n := range []string{"vantage_http_", "vantage_tls_", "vantage_browser_"} {
				if bytes.Contains(got, []byte(n)) {
					t.Errorf("%s* written without samples", n)
				}
			}
		})
	}
}
