// Package expotest is test support for comparing the streaming
// expo.Encoder with client_golang's registry + expfmt: it writes the
// same samples both ways, parses both outputs back with prometheus/common's
// own parsers (text, OpenMetrics, delimited protobuf) and compares the
// families. It is imported only by tests.
package expotest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-monitoring/vantage/internal/expo"
)

// WireFormat is a format the Encoder writes, named for subtests.
type WireFormat struct {
	Name   string
	Format expfmt.Format
}

// WireFormats are the formats the Encoder writes.
var WireFormats = []WireFormat{
	{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
	{"openmetrics", expfmt.NewFormat(expfmt.TypeOpenMetrics)},
	{"openmetrics-0.0.1", expfmt.FmtOpenMetrics_0_0_1},
	{"proto", expfmt.NewFormat(expfmt.TypeProtoDelim)},
}

// Encode runs fn against an Encoder for format and returns its output.
func Encode(tb testing.TB, format expfmt.Format, fn func(e *expo.Encoder)) []byte {
	tb.Helper()
	var buf bytes.Buffer
	e, ok := expo.NewEncoder(&buf, format)
	if !ok {
		tb.Fatalf("NewEncoder refused %q", format)
	}
	fn(e)
	if err := e.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// Stream streams the families of s that want asks for (all when want is
// nil) into an Encoder for format and returns its output.
func Stream(tb testing.TB, format expfmt.Format, s expo.Streamer, want func(string) bool) []byte {
	tb.Helper()
	return Encode(tb, format, func(e *expo.Encoder) { s.Stream(e, want) })
}

// Expfmt is the reference: expfmt's encoder over gathered families.
func Expfmt(tb testing.TB, format expfmt.Format, mfs []*dto.MetricFamily) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			tb.Fatalf("expfmt Encode %s: %v", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// Gather registers cs in a pedantic registry and gathers them.
func Gather(tb testing.TB, cs ...prometheus.Collector) []*dto.MetricFamily {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		reg.MustRegister(c)
	}
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("Gather: %v", err)
	}
	return mfs
}

// FilterFamilies returns the families whose names want accepts (all of
// them when want is nil).
func FilterFamilies(mfs []*dto.MetricFamily, want func(string) bool) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		if want == nil || want(mf.GetName()) {
			out = append(out, mf)
		}
	}
	return out
}

// Decode parses b in format with prometheus/common's parsers.
func Decode(format expfmt.Format, b []byte) ([]*dto.MetricFamily, error) {
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

// Normalize returns copies sorted by family name and label set, with each
// metric's labels and quantiles sorted (their order carries no meaning).
func Normalize(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, len(mfs))
	for i, mf := range mfs {
		mf = proto.Clone(mf).(*dto.MetricFamily)
		for _, m := range mf.Metric {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
			if s := m.GetSummary(); s != nil {
				slices.SortFunc(s.Quantile, func(a, b *dto.Quantile) int {
					return cmp.Compare(a.GetQuantile(), b.GetQuantile())
				})
			}
		}
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a), labelKey(b)) })
		out[i] = mf
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// FamilyNames are the families' names, sorted.
func FamilyNames(mfs []*dto.MetricFamily) []string {
	var n []string
	for _, mf := range mfs {
		n = append(n, mf.GetName())
	}
	slices.Sort(n)
	return n
}

// Diff reports how got and want differ ("" when they do not).
// proto.Equal treats NaN as equal to NaN, which is what we want here;
// tests that care check separately that NaN survives at all.
func Diff(got, want []*dto.MetricFamily) string {
	got, want = Normalize(got), Normalize(want)
	if g, w := FamilyNames(got), FamilyNames(want); !slices.Equal(g, w) {
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

// CheckLines compares two text or OpenMetrics outputs line by line, in any
// order: comment lines, and each sample's series (name and label string,
// le and quantile included: a Prometheus 2 server keeps label values as
// spelt) byte for byte; sample values as numbers, since "12345678" and
// "1.2345678e+07" are the same value.
func CheckLines(tb testing.TB, got, want []byte) {
	tb.Helper()
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
		tb.Errorf("%d lines, expfmt wrote %d:\n%s\n---\n%s", len(g), len(w), got, want)
		return
	}
	for i := range g {
		if g[i].key != w[i].key {
			tb.Errorf("line %q, expfmt wrote %q", g[i].key, w[i].key)
			return
		}
		if g[i].val == "" && w[i].val == "" {
			continue // a comment or the final newline
		}
		gv, gErr := strconv.ParseFloat(g[i].val, 64)
		wv, wErr := strconv.ParseFloat(w[i].val, 64)
		if gErr != nil || wErr != nil || !(gv == wv || math.IsNaN(gv) && math.IsNaN(wv)) {
			tb.Errorf("%s: value %q, expfmt wrote %q", g[i].key, g[i].val, w[i].val)
		}
	}
}

// CheckOpenMetricsFraming checks OpenMetrics rules byte by byte: exactly
// one "# EOF\n", last; counters' TYPE/HELP name drops _total while their
// samples keep it; every float value has a "." or an "e".
func CheckOpenMetricsFraming(tb testing.TB, b []byte) {
	tb.Helper()
	s := string(b)
	if !strings.HasSuffix(s, "# EOF\n") || strings.Count(s, "# EOF") != 1 {
		tb.Errorf("OpenMetrics output must end with exactly one \"# EOF\\n\":\n%q", s)
	}
	var fam, typ string // of the last TYPE line
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			fam, typ, _ = strings.Cut(rest, " ")
			if typ == "counter" && strings.HasSuffix(fam, "_total") {
				tb.Errorf("counter TYPE line keeps _total: %q", l)
			}
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		name := l[:strings.IndexAny(l, "{ ")]
		if typ == "counter" && name != fam+"_total" {
			tb.Errorf("sample %q in counter family %s", l, fam)
		}
		v := l[strings.LastIndexByte(l, ' ')+1:]
		isCount := strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_bucket")
		if !isCount && !strings.ContainsAny(v, ".e") && v != "NaN" && v != "+Inf" && v != "-Inf" {
			tb.Errorf("OpenMetrics float without . or e: %q", l)
		}
	}
}

// CheckEquivalent asserts that got (the Encoder's output) means what want
// (expfmt's output for gathered) means in format, and returns the decoded
// families of got.
func CheckEquivalent(tb testing.TB, format expfmt.Format, got, want []byte, gathered []*dto.MetricFamily) []*dto.MetricFamily {
	tb.Helper()
	gotMF, err := Decode(format, got)
	if err != nil {
		tb.Fatalf("parsing the Encoder's output: %v\n%s", err, got)
	}
	wantMF, err := Decode(format, want)
	if err != nil {
		tb.Fatalf("parsing expfmt's output: %v\n%s", err, want)
	}
	// The reference itself must hold what was gathered, or the comparison
	// proves nothing.
	if g, w := FamilyNames(wantMF), FamilyNames(gathered); !slices.Equal(g, w) {
		tb.Fatalf("reference parsed to %v, gathered %v", g, w)
	}
	if d := Diff(gotMF, wantMF); d != "" {
		if format.FormatType() == expfmt.TypeProtoDelim {
			tb.Errorf("Encoder and expfmt disagree: %s", d)
		} else {
			tb.Errorf("Encoder and expfmt disagree: %s\nEncoder output:\n%s\nexpfmt output:\n%s", d, got, want)
		}
	}
	switch format.FormatType() {
	case expfmt.TypeProtoDelim:
		// Protobuf loses nothing: the decoded families are the gathered ones.
		if d := Diff(gotMF, gathered); d != "" {
			tb.Errorf("decoded protobuf is not what was gathered: %s", d)
		}
	case expfmt.TypeOpenMetrics:
		CheckOpenMetricsFraming(tb, got)
		CheckLines(tb, got, want)
	case expfmt.TypeTextPlain:
		if bytes.Contains(got, []byte("# EOF")) {
			tb.Errorf("text output has an OpenMetrics # EOF:\n%s", got)
		}
		CheckLines(tb, got, want)
	}
	return gotMF
}

// FindMetric is the first metric of the family name that has the label
// label=value, or nil.
func FindMetric(mfs []*dto.MetricFamily, name, label, value string) *dto.Metric {
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
