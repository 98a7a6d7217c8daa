package metrics

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/vantage-monitoring/vantage/internal/expo"
)

// clientHist is what client_golang exposes for values observed into a
// histogram with HistogramOpts, the histogram hist replaces.
func clientHist(t *testing.T, values []float64) *dto.Histogram {
	t.Helper()
	h := prometheus.NewHistogram(HistogramOpts("h", "h"))
	for _, v := range values {
		h.Observe(v)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	m.Histogram.CreatedTimestamp = nil
	return m.Histogram
}

func ourHist(values []float64) *hist {
	h := newHist(time.Unix(1700000000, 5))
	for _, v := range values {
		h.observe(v)
	}
	return &h
}

// TestHistMatchesClientGolang: for the same observations hist exposes
// exactly what client_golang's histogram with HistogramOpts exposes:
// classic buckets, count, sum, schema, zero bucket, spans and deltas,
// including after the schema is lowered for having more than 160 buckets.
func TestHistMatchesClientGolang(t *testing.T) {
	if len(durationBuckets) != numBuckets {
		t.Fatalf("numBuckets %d, durationBuckets has %d", numBuckets, len(durationBuckets))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	logUniform := func(n int, lo, hi float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
		}
		return out
	}
	var exact []float64
	for e := -20; e <= 6; e++ {
		for _, f := range schema3Bounds {
			exact = append(exact, math.Ldexp(f, e), math.Nextafter(math.Ldexp(f, e), 0), math.Nextafter(math.Ldexp(f, e), 2))
		}
	}
	exact = append(exact, durationBuckets...)
	cases := map[string][]float64{
		"none":      nil,
		"one":       {0.0123},
		"zero":      {0, 0, 0.5},
		"loopback":  logUniform(5000, 0.0002, 0.05),
		"gaps":      {0.001, 0.00109, 0.0013, 0.0016, 0.1, 0.12, 7},
		"bounds":    exact,
		"wide":      logUniform(20000, 1e-7, 600),            // > 160 buckets: schema 2, then 1
		"very wide": logUniform(20000, 1e-30, 1e30),          // down to schema 0 and below
		"inf":       {0.1, math.Inf(+1), 1e300, 0.2, 1e-300}, // not durations, but defined
	}
	for name, values := range cases {
		t.Run(name, func(t *testing.T) {
			want := clientHist(t, values)
			got := ourHist(values).dto(true, true)
			if !got.GetCreatedTimestamp().AsTime().Equal(time.Unix(1700000000, 5)) {
				t.Errorf("created %v", got.GetCreatedTimestamp().AsTime())
			}
			got.CreatedTimestamp = nil
			if !proto.Equal(got, want) {
				t.Fatalf("hist:\n%v\nclient_golang:\n%v", got, want)
			}
			if name == "wide" && got.GetSchema() >= histSchema {
				t.Errorf("schema %d: the case did not lower it", got.GetSchema())
			}
		})
	}
}

// TestHistNativeBounded: however many distinct durations a target sees,
// its native buckets stay within the populated-bucket limit, and the
// dense range within twice that.
func TestHistNativeBounded(t *testing.T) {
	h := newHist(time.Now())
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		h.observe(math.Exp(math.Log(1e-9) + rng.Float64()*math.Log(1e12)))
		if h.populated > histMaxBuckets {
			t.Fatalf("%d populated buckets", h.populated)
		}
	}
	if len(h.native) > 2*histMaxBuckets {
		t.Errorf("dense range %d", len(h.native))
	}
}

// TestEncoderHistMatchesDTO: the Encoder's direct path for a hist writes
// exactly the bytes its client_model path writes, in every format and
// with each choice of buckets.
func TestEncoderHistMatchesDTO(t *testing.T) {
	f := expo.NewFamily("vantage_check_duration_seconds", "Duration.", dto.MetricType_HISTOGRAM, []string{"check"})
	p := expo.LabelPairs{}.With("check", "a")
	h := ourHist([]float64{0.001, 0.004, 0.02, 0.02, 0.3, 45, 0})
	formats := []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeOpenMetrics), expfmt.NewFormat(expfmt.TypeProtoDelim)}
	for _, format := range formats {
		for _, parts := range [][2]bool{{true, true}, {true, false}, {false, true}} {
			var direct, viaDTO bytes.Buffer
			e, _ := expo.NewEncoder(&direct, format)
			hs := &histSample{h: h, classic: parts[0], native: parts[1]}
			e.Histogram(f, p, hs)
			e.Histogram(f, p, hs) // the scratch form is reused
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e, _ = expo.NewEncoder(&viaDTO, format)
			for range 2 {
				e.Metric(f, &histMetric{f, p, h.dto(parts[0], parts[1])})
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(direct.Bytes(), viaDTO.Bytes()) {
				t.Errorf("%s classic=%v native=%v:\n%q\nvia client_model:\n%q", format, parts[0], parts[1], direct.Bytes(), viaDTO.Bytes())
			}
			if parts[0] != bytes.Contains(direct.Bytes(), []byte("0.005")) && format.FormatType() != expfmt.TypeProtoDelim {
				t.Errorf("%s classic=%v: le=\"0.005\" presence wrong", format, parts[0])
			}
		}
	}
}
