package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// userHZ is the unit of utime/stime in /proc/PID/stat. The kernel exports
// these in USER_HZ, which is 100 on every Linux architecture Go supports
// (it is an ABI constant, unlike the kernel's internal HZ).
const userHZ = 100

// cpuTime is the user+system CPU time of a process so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime+stime from the contents of /proc/PID/stat.
// The command name (field 2) may contain spaces and parentheses, so the
// fields are counted from its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command field in %q", truncate(stat, 80))
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: utime/stime %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procKB reads one "Key:   123 kB" line from a /proc file (status,
// smaps_rollup) and returns it in bytes.
func procKB(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseKB(f, key)
}

func parseKB(r io.Reader, key string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: want \"N kB\", got %q", key, strings.TrimSpace(rest))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", key, err)
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: not found", key)
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	upper float64 // upper bound; +Inf for the last
	cum   float64 // observations ≤ upper
}

// snapshot is what the harness reads from the daemon at one moment.
type snapshot struct {
	at      time.Time
	cpu     time.Duration
	runs    map[string]float64 // vantage_check_runs_total by result
	delay   []bucket           // start delay, summed over label sets
	skipped float64
}

func (s snapshot) totalRuns() float64 {
	var n float64
	for _, v := range s.runs {
		n += v
	}
	return n
}

// scrape fetches and parses the daemon's text exposition as a Prometheus
// server asks for it (gzip). It returns the uncompressed body size and the
// time until the last compressed byte arrived: the daemon's side of a
// scrape. Decompression and parsing happen after the clock stops, so the
// harness's own work is not counted (a Go client would otherwise
// decompress on the fly, on the same cores).
func scrape(ctx context.Context, c *http.Client, url string) (map[string]*dto.MetricFamily, int64, time.Duration, error) {
	body, took, err := fetch(ctx, c, url, "text/plain;version=0.0.4")
	if err != nil {
		return nil, 0, 0, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("parsing %s: %w", url, err)
	}
	return fams, int64(len(body)), took, nil
}

// protoAccept is what Prometheus asks for first when native histograms
// are enabled.
const protoAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

// fetch GETs url with the given Accept and gzip, timing the transfer, and
// returns the decompressed body.
func fetch(ctx context.Context, c *http.Client, url, accept string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", accept)
	// Set explicitly, so the transport does not decompress transparently.
	req.Header.Set("Accept-Encoding", "gzip")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return raw, took, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: gunzip: %w", url, err)
	}
	return body, took, nil
}

// readSnapshot extracts the benchmark's series from a scrape.
func readSnapshot(fams map[string]*dto.MetricFamily) snapshot {
	s := snapshot{runs: map[string]float64{}}
	if f := fams["vantage_check_runs_total"]; f != nil {
		for _, m := range f.GetMetric() {
			s.runs[labelValue(m, "result")] += m.GetCounter().GetValue()
		}
	}
	if f := fams["vantage_scheduler_skipped_runs_total"]; f != nil {
		for _, m := range f.GetMetric() {
			s.skipped += m.GetCounter().GetValue()
		}
	}
	if f := fams["vantage_scheduler_start_delay_seconds"]; f != nil {
		byUpper := map[float64]float64{}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			hasInf := false
			for _, b := range h.GetBucket() {
				byUpper[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			// The text parser keeps the le="+Inf" line as a bucket; other
			// sources leave it implicit in the sample count.
			if !hasInf {
				byUpper[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		for u, c := range byUpper {
			s.delay = append(s.delay, bucket{upper: u, cum: c})
		}
		slices.SortFunc(s.delay, func(a, b bucket) int { return compareFloat(a.upper, b.upper) })
	}
	return s
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// deltaBuckets subtracts an earlier cumulative histogram from a later one
// with the same bounds (a bound missing before counts as zero).
func deltaBuckets(before, after []bucket) []bucket {
	prev := map[float64]float64{}
	for _, b := range before {
		prev[b.upper] = b.cum
	}
	out := make([]bucket, len(after))
	for i, b := range after {
		out[i] = bucket{upper: b.upper, cum: b.cum - prev[b.upper]}
	}
	return out
}

// bucketQuantile estimates quantile q from cumulative buckets sorted by
// upper bound, the last being +Inf, the way PromQL's histogram_quantile
// does: linear interpolation inside the bucket holding the rank, with 0 as
// the lower edge of the first bucket. When the rank falls in the +Inf
// bucket the largest finite bound is returned with exact=false: the true
// value is only known to be above it. With no observations it returns NaN.
func bucketQuantile(q float64, bs []bucket) (v float64, exact bool) {
	if len(bs) == 0 || bs[len(bs)-1].cum <= 0 || q < 0 || q > 1 {
		return math.NaN(), false
	}
	rank := q * bs[len(bs)-1].cum
	lower, below := 0.0, 0.0
	for i, b := range bs {
		if b.cum >= rank && b.cum > below {
			if math.IsInf(b.upper, 1) {
				if i == 0 {
					return math.NaN(), false
				}
				return bs[i-1].upper, false
			}
			return lower + (b.upper-lower)*(rank-below)/(b.cum-below), true
		}
		lower, below = b.upper, b.cum
	}
	return math.NaN(), false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
