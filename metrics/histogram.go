package metrics

import (
	"math"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vantage-monitoring/vantage/internal/expo"
)

// hist is one target's vantage_check_duration_seconds: the classic buckets
// of durationBuckets and a native histogram with the settings of
// HistogramOpts (bucket factor 1.1, i.e. schema 3; at most 160 populated
// buckets, then half the resolution; client_golang's default zero
// threshold). It exposes exactly what a client_golang histogram with
// those options exposes (the tests compare the two), in a fraction of the
// memory: client_golang keeps the native buckets twice (hot and cold
// counts) in sync.Maps, ~100 bytes per populated bucket each, which at
// 100,000 targets was over 300 MB of live heap and kept growing as more
// buckets got hit. Here the native buckets are one dense slice of 32-bit
// counts over the populated key range.
//
// Not safe for concurrent use: the owner's mutex guards it.
type hist struct {
	classic [numBuckets]uint64 // per bucket, not cumulative
	count   uint64
	sum     float64
	zero    uint64 // native zero bucket
	created int64  // Unix ns, the created timestamp client_golang exposes
	schema  int32
	lo      int32 // native key of native[0]
	// populated counts native's non-zero buckets (client_golang's limit
	// counts populated buckets, not the key range).
	populated int32
	// native are the counts of keys lo … lo+len-1. A count would wrap after
	// 4,294,967,295 runs in one bucket: 136 years at a 1 s interval.
	native []uint32
}

const (
	histSchema     = 3   // client_golang's pickSchema(1.1)
	histMaxBuckets = 160 // HistogramOpts' NativeHistogramMaxBucketNumber
	// histZeroThreshold is client_golang's DefNativeHistogramZeroThreshold.
	histZeroThreshold = 2.938735877055719e-39
)

// schema3Bounds are client_golang's native bucket bounds of schema 3 (the
// fractions math.Frexp returns); lower schemas use every 2nd, 4th, 8th.
var schema3Bounds = [...]float64{
	0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
	0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
}

func newHist(created time.Time) hist {
	return hist{schema: histSchema, created: created.UnixNano()}
}

// nativeKey is the native bucket key of v (> 0, finite) at schema, as
// client_golang computes it.
func nativeKey(v float64, schema int32) int {
	frac, exp := math.Frexp(v)
	if schema > 0 {
		step := 1 << (histSchema - schema)
		n := len(schema3Bounds) / step
		i := sort.Search(n, func(i int) bool { return schema3Bounds[i*step] >= frac })
		return i + (exp-1)*n
	}
	key := exp
	if frac == 0.5 {
		key--
	}
	offset := (1 << -schema) - 1
	return (key + offset) >> -schema
}

// observe adds one duration in seconds.
func (h *hist) observe(v float64) {
	if i := sort.SearchFloat64s(durationBuckets, v); i < len(durationBuckets) {
		h.classic[i]++
	}
	h.count++
	h.sum += v
	if math.IsNaN(v) {
		return
	}
	if v <= histZeroThreshold {
		// Durations are never negative; a negative one would be a clock
		// step, counted as zero rather than in a negative bucket.
		h.zero++
		return
	}
	inf := math.IsInf(v, +1)
	if inf {
		v = math.MaxFloat64 // as client_golang: the key after MaxFloat64's
	}
	key := nativeKey(v, h.schema)
	if inf {
		key++
	}
	h.add(key, 1)
	for h.populated > histMaxBuckets && h.schema > -4 {
		h.halve()
	}
}

// add adds n to the native bucket key, growing the dense range.
func (h *hist) add(key int, n uint32) {
	switch {
	case len(h.native) == 0:
		h.lo = int32(key)
		h.native = append(h.native[:0], n)
		h.populated = 1
		return
	case key < int(h.lo):
		grow := int(h.lo) - key
		nb := make([]uint32, grow+len(h.native), grow+len(h.native)+1)
		copy(nb[grow:], h.native)
		h.native, h.lo = nb, int32(key)
	case key >= int(h.lo)+len(h.native):
		for key >= int(h.lo)+len(h.native) {
			h.native = append(h.native, 0)
		}
	}
	c := &h.native[key-int(h.lo)]
	if *c == 0 {
		h.populated++
	}
	*c += n
}

// halve lowers the schema by one, merging each pair of buckets, as
// client_golang does when a histogram has too many buckets.
func (h *hist) halve() {
	old, lo := h.native, int(h.lo)
	h.native, h.populated = nil, 0
	h.schema--
	for i, c := range old {
		if c != 0 {
			// ceil(key/2): client_golang's (key+1)/2 above zero, key/2 else.
			h.add((lo+i+1)>>1, c)
		}
	}
}

// spans are the native buckets as protobuf spans and deltas, as
// client_golang's makeBuckets builds them: gaps of one or two empty
// buckets stay inside a span.
func (h *hist) spans(fn func(offset int32, length uint32), delta func(int64)) {
	var prev int64
	next, spanStart, length := 0, 0, uint32(0)
	first := true
	for i, c := range h.native {
		if c == 0 {
			continue
		}
		key := int(h.lo) + i
		gap := key - next
		if first || gap > 2 {
			if !first {
				fn(int32(spanStart), length)
			}
			spanStart, length = gap, 0
			if first {
				spanStart = key
			}
			first = false
		} else {
			for range gap {
				length++
				delta(-prev)
				prev = 0
			}
		}
		length++
		delta(int64(c) - prev)
		prev = int64(c)
		next = key + 1
	}
	if !first {
		fn(int32(spanStart), length)
	}
}

// dto is h in client_model form; classic and native say which parts to
// include (at least one).
func (h *hist) dto(classic, native bool) *dto.Histogram {
	count, sum := h.count, h.sum
	out := &dto.Histogram{SampleCount: &count, SampleSum: &sum, CreatedTimestamp: timestamppb.New(time.Unix(0, h.created))}
	if classic {
		var cum uint64
		out.Bucket = make([]*dto.Bucket, len(durationBuckets))
		for i, ub := range durationBuckets {
			cum += h.classic[i]
			out.Bucket[i] = &dto.Bucket{CumulativeCount: proto.Uint64(cum), UpperBound: proto.Float64(ub)}
		}
	}
	if native {
		out.Schema = proto.Int32(h.schema)
		out.ZeroThreshold = proto.Float64(histZeroThreshold)
		out.ZeroCount = proto.Uint64(h.zero)
		h.spans(func(o int32, l uint32) {
			out.PositiveSpan = append(out.PositiveSpan, &dto.BucketSpan{Offset: proto.Int32(o), Length: proto.Uint32(l)})
		}, func(d int64) { out.PositiveDelta = append(out.PositiveDelta, d) })
	}
	return out
}

// histMetric is a hist sample for the registry path.
type histMetric struct {
	fam   *expo.Family
	pairs expo.LabelPairs
	h     *dto.Histogram
}

func (m *histMetric) Desc() *prometheus.Desc { return m.fam.Desc() }

func (m *histMetric) Write(out *dto.Metric) error {
	out.Label, out.Histogram = m.pairs, m.h
	return nil
}

// histSample is a copy of a target's hist as an expo.Histogram, with its
// reusable protobuf form; classic and native say which buckets to write.
type histSample struct {
	h               *hist
	d               histDTO
	classic, native bool
}

func (s *histSample) Classic() (bounds []float64, counts []uint64, count uint64, sum float64) {
	if !s.classic {
		return nil, nil, s.h.count, s.h.sum
	}
	return durationBuckets, s.h.classic[:], s.h.count, s.h.sum
}

func (s *histSample) Metric(p expo.LabelPairs) *dto.Metric {
	return s.d.fill(p, s.h, s.classic, s.native)
}

// histDTO is a scrape's reusable client_model form of a hist, so that
// writing 100,000 histograms in protobuf allocates none of their parts.
type histDTO struct {
	m       dto.Metric
	h       dto.Histogram
	count   uint64
	sum     float64
	schema  int32
	zt      float64
	zero    uint64
	created timestamppb.Timestamp
	buckets [numBuckets]dto.Bucket
	bptr    [numBuckets]*dto.Bucket
	cum     [numBuckets]uint64
	ub      [numBuckets]float64
	spans   []*spanDTO
	sptr    []*dto.BucketSpan
	deltas  []int64
}

type spanDTO struct {
	s      dto.BucketSpan
	off    int32
	length uint32
}

// fill points d.m at h's figures (and the labels p).
func (d *histDTO) fill(p expo.LabelPairs, h *hist, classic, native bool) *dto.Metric {
	if d.m.Histogram == nil {
		for i := range d.buckets {
			d.ub[i] = durationBuckets[i]
			d.buckets[i].CumulativeCount, d.buckets[i].UpperBound = &d.cum[i], &d.ub[i]
			d.bptr[i] = &d.buckets[i]
		}
		d.h.SampleCount, d.h.SampleSum, d.h.CreatedTimestamp = &d.count, &d.sum, &d.created
		d.m.Histogram = &d.h
	}
	d.m.Label = p
	d.count, d.sum = h.count, h.sum
	d.created.Seconds, d.created.Nanos = h.created/1e9, int32(h.created%1e9)
	d.h.Bucket = nil
	if classic {
		var cum uint64
		for i := range d.cum {
			cum += h.classic[i]
			d.cum[i] = cum
		}
		d.h.Bucket = d.bptr[:]
	}
	d.h.Schema, d.h.ZeroThreshold, d.h.ZeroCount = nil, nil, nil
	d.h.PositiveSpan, d.h.PositiveDelta = nil, nil
	if native {
		d.schema, d.zt, d.zero = h.schema, histZeroThreshold, h.zero
		d.h.Schema, d.h.ZeroThreshold, d.h.ZeroCount = &d.schema, &d.zt, &d.zero
		d.sptr, d.deltas = d.sptr[:0], d.deltas[:0]
		h.spans(func(o int32, l uint32) {
			n := len(d.sptr)
			if n == len(d.spans) {
				sd := &spanDTO{}
				sd.s.Offset, sd.s.Length = &sd.off, &sd.length
				d.spans = append(d.spans, sd)
			}
			sd := d.spans[n]
			sd.off, sd.length = o, l
			d.sptr = append(d.sptr, &sd.s)
		}, func(v int64) { d.deltas = append(d.deltas, v) })
		if len(d.sptr) > 0 {
			d.h.PositiveSpan, d.h.PositiveDelta = d.sptr, d.deltas
		}
	}
	return &d.m
}
