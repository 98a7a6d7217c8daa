package expo

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// LabelPairs is a sorted, immutable label set for scrape-time metrics.
// prometheus.NewConstMetric builds and sorts a fresh set for every sample
// of every scrape; with ~40 samples per target at 10,000 targets that was
// most of a scrape's allocations. A target's pairs are built once and
// shared by every scrape (readers never modify them).
type LabelPairs []*dto.LabelPair

// With returns a new set with one more label.
func (p LabelPairs) With(name, value string) LabelPairs {
	return p.WithPair(&dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
}

// WithPair returns a new set with one more (shared, immutable) pair.
func (p LabelPairs) WithPair(lp *dto.LabelPair) LabelPairs {
	return p.AppendWith(make(LabelPairs, 0, len(p)+1), lp)
}

// AppendWith appends p with lp inserted in name order to dst (a reused
// buffer, for samples whose pairs are not kept).
func (p LabelPairs) AppendWith(dst LabelPairs, lp *dto.LabelPair) LabelPairs {
	name := lp.GetName()
	i := sort.Search(len(p), func(i int) bool { return p[i].GetName() >= name })
	dst = append(dst, p[:i]...)
	dst = append(dst, lp)
	return append(dst, p[i:]...)
}

// constMetric is a gauge or counter sample with cached label pairs.
type constMetric struct {
	fam     *Family
	pairs   LabelPairs
	counter bool
	v       float64
}

func (m *constMetric) Desc() *prometheus.Desc { return m.fam.desc }

func (m *constMetric) Write(out *dto.Metric) error {
	out.Label = m.pairs
	v := m.v
	if m.counter {
		out.Counter = &dto.Counter{Value: &v}
	} else {
		out.Gauge = &dto.Gauge{Value: &v}
	}
	return nil
}

// Gauge is a gauge sample; pairs must match f's variable labels.
func Gauge(f *Family, pairs LabelPairs, v float64) prometheus.Metric {
	return &constMetric{fam: f, pairs: pairs, v: v}
}

// Counter is a counter sample; pairs must match f's variable labels.
func Counter(f *Family, pairs LabelPairs, v float64) prometheus.Metric {
	return &constMetric{fam: f, pairs: pairs, counter: true, v: v}
}

// summaryMetric is a summary sample with cached label pairs.
type summaryMetric struct {
	fam       *Family
	pairs     LabelPairs
	count     uint64
	sum       float64
	quantiles []*dto.Quantile
}

func (m *summaryMetric) Desc() *prometheus.Desc { return m.fam.desc }

func (m *summaryMetric) Write(out *dto.Metric) error {
	out.Label = m.pairs
	c, s := m.count, m.sum
	out.Summary = &dto.Summary{SampleCount: &c, SampleSum: &s, Quantile: m.quantiles}
	return nil
}

// Summary is a summary sample; qs and vs are quantiles and their values.
func Summary(f *Family, pairs LabelPairs, count uint64, sum float64, qs, vs []float64) prometheus.Metric {
	quant := make([]*dto.Quantile, len(qs))
	for i := range qs {
		q, v := qs[i], vs[i]
		quant[i] = &dto.Quantile{Quantile: &q, Value: &v}
	}
	return &summaryMetric{fam: f, pairs: pairs, count: count, sum: sum, quantiles: quant}
}

// PairCache interns label pairs: pairs such as result="success" or
// window="5m" are the same for every target, so each exists once.
type PairCache struct {
	mu sync.Mutex
	m  map[[2]string]*dto.LabelPair
}

// Get returns the shared pair name=value.
func (c *PairCache) Get(name, value string) *dto.LabelPair {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{name, value}
	if lp, ok := c.m[k]; ok {
		return lp
	}
	if c.m == nil {
		c.m = map[[2]string]*dto.LabelPair{}
	}
	lp := &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
	c.m[k] = lp
	return lp
}
