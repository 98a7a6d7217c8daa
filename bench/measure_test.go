package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 observations: 50 ≤ 1ms, 40 in (1ms, 5ms], 9 in (5ms, 10ms], 1 above.
	bs := []bucket{{0.001, 50}, {0.005, 90}, {0.01, 99}, {inf, 100}}
	for _, tc := range []struct {
		q     float64
		want  float64
		exact bool
	}{
		{0.25, 0.0005, true},  // half-way through the first bucket, from 0
		{0.5, 0.001, true},    // exactly its upper bound
		{0.7, 0.003, true},    // half-way through (1ms, 5ms]
		{0.99, 0.01, true},    // top of (5ms, 10ms]
		{0.995, 0.01, false},  // in +Inf: only "above 10ms" is known
		{0.945, 0.0075, true}, // half-way through (5ms, 10ms]
	} {
		got, exact := bucketQuantile(tc.q, bs)
		if math.Abs(got-tc.want) > 1e-12 || exact != tc.exact {
			t.Errorf("q=%v: got %v (exact %v), want %v (exact %v)", tc.q, got, exact, tc.want, tc.exact)
		}
	}
	if v, _ := bucketQuantile(0.5, []bucket{{0.001, 0}, {inf, 0}}); !math.IsNaN(v) {
		t.Errorf("empty histogram: got %v, want NaN", v)
	}
	// Empty leading buckets are skipped, not interpolated into.
	if v, _ := bucketQuantile(0.5, []bucket{{0.001, 0}, {0.002, 0}, {0.004, 10}, {inf, 10}}); v != 0.003 {
		t.Errorf("leading empty buckets: got %v, want 0.003", v)
	}
}

func TestDeltaAndSnapshot(t *testing.T) {
	expo := func(b1, b2, inf, runsOK, runsErr int) string {
		return strings.NewReplacer("B1", itoa(b1), "B2", itoa(b2), "INF", itoa(inf), "OK", itoa(runsOK), "ERR", itoa(runsErr)).Replace(`# TYPE vantage_scheduler_start_delay_seconds histogram
vantage_scheduler_start_delay_seconds_bucket{type="http",le="0.001"} B1
vantage_scheduler_start_delay_seconds_bucket{type="http",le="0.01"} B2
vantage_scheduler_start_delay_seconds_bucket{type="http",le="+Inf"} INF
vantage_scheduler_start_delay_seconds_sum{type="http"} 1
vantage_scheduler_start_delay_seconds_count{type="http"} INF
vantage_scheduler_start_delay_seconds_bucket{type="tcp",le="0.001"} 1
vantage_scheduler_start_delay_seconds_bucket{type="tcp",le="0.01"} 1
vantage_scheduler_start_delay_seconds_bucket{type="tcp",le="+Inf"} 1
vantage_scheduler_start_delay_seconds_sum{type="tcp"} 0
vantage_scheduler_start_delay_seconds_count{type="tcp"} 1
# TYPE vantage_check_runs_total counter
vantage_check_runs_total{check="a",result="success"} OK
vantage_check_runs_total{check="a",result="error"} ERR
vantage_check_runs_total{check="b",result="success"} OK
# TYPE vantage_scheduler_skipped_runs_total counter
vantage_scheduler_skipped_runs_total{check="a"} 2
`)
	}
	parse := func(s string) snapshot {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return readSnapshot(fams)
	}
	s0 := parse(expo(10, 20, 20, 5, 1))
	s1 := parse(expo(60, 110, 120, 55, 1))
	if got := s0.totalRuns(); got != 11 {
		t.Errorf("runs = %v, want 11", got)
	}
	if s1.runs["success"] != 110 || s1.skipped != 2 {
		t.Errorf("snapshot = %+v", s1)
	}
	// The +Inf line must be counted once, summed over the type label.
	want0 := []bucket{{0.001, 11}, {0.01, 21}, {math.Inf(1), 21}}
	if !equalBuckets(s0.delay, want0) {
		t.Errorf("delay buckets = %v, want %v", s0.delay, want0)
	}
	d := deltaBuckets(s0.delay, s1.delay)
	wantD := []bucket{{0.001, 50}, {0.01, 90}, {math.Inf(1), 100}}
	if !equalBuckets(d, wantD) {
		t.Errorf("delta = %v, want %v", d, wantD)
	}
	if v, exact := bucketQuantile(0.5, d); v != 0.001 || !exact {
		t.Errorf("p50 of delta = %v, %v", v, exact)
	}
}

func itoa(n int) string { return thousands(n) }

func equalBuckets(a, b []bucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (vantage (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
	for _, bad := range []string{"no parens", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 5 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q): want error", bad)
		}
	}
	// The real file of this process parses and grows with work.
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Busy until the counter moves: the kernel counts in clock ticks and a
	// loaded machine may give this process little CPU, so no fixed amount
	// of wall-clock work is sure to show. The deadline only catches a
	// counter that never grows.
	var after time.Duration
	deadline := time.Now().Add(time.Minute)
	for {
		spin := time.Now()
		for time.Since(spin) < 10*time.Millisecond {
		}
		if after, err = cpuTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu time did not grow within a minute of busy work: %v then %v", before, after)
		}
	}
}

func TestParseKB(t *testing.T) {
	status := "Name:\tvantage\nVmPeak:\t  500000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
	got, err := parseKB(strings.NewReader(status), "VmHWM")
	if err != nil || got != 123456<<10 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if _, err := parseKB(strings.NewReader(status), "Pss"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing key: err = %v", err)
	}
	if _, err := parseKB(strings.NewReader("VmHWM: 12 MB\n"), "VmHWM"); err == nil {
		t.Error("wrong unit: want error")
	}
	// The real files the harness reads.
	if n, err := procKB("/proc/self/status", "VmHWM"); err != nil || n == 0 {
		t.Errorf("/proc/self/status VmHWM = %d, %v", n, err)
	}
	if n, err := procKB("/proc/self/smaps_rollup", "Pss"); err != nil || n == 0 {
		t.Errorf("/proc/self/smaps_rollup Pss = %d, %v", n, err)
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/vantage-monitoring/vantage/stats
cpu: Intel(R) Xeon(R) Processor
BenchmarkAdd-2         	 1000000	       120 ns/op	         3.500 bytes/series	      16 B/op	       1 allocs/op
BenchmarkAdd-2         	 1000000	       100 ns/op	         3.500 bytes/series	      16 B/op	       1 allocs/op
BenchmarkAdd-2         	 1000000	       140 ns/op	         3.500 bytes/series	      16 B/op	       1 allocs/op
BenchmarkQuery/series=10-2   	    5000	     20000 ns/op
PASS
ok  	github.com/vantage-monitoring/vantage/stats	3.2s
pkg: github.com/vantage-monitoring/vantage/demo
BenchmarkAdd-2   	  100	  5000 ns/op	  0 B/op	  0 allocs/op
--- FAIL: BenchmarkBroken-2
`
	got := parseBench(strings.NewReader(out))
	if len(got) != 3 {
		t.Fatalf("got %d results: %+v", len(got), got)
	}
	a := got[0]
	if a.pkg != "github.com/vantage-monitoring/vantage/stats" || a.name != "BenchmarkAdd" || a.runs != 3 {
		t.Errorf("first = %+v", a)
	}
	if a.metrics["ns/op"] != 120 || a.metrics["B/op"] != 16 || a.extra() != "3.50 bytes/series" {
		t.Errorf("medians = %v, extra %q", a.metrics, a.extra())
	}
	if got[1].name != "BenchmarkQuery/series=10" || got[1].metrics["ns/op"] != 20000 {
		t.Errorf("sub-benchmark = %+v", got[1])
	}
	if got[2].pkg != "github.com/vantage-monitoring/vantage/demo" || got[2].metrics["ns/op"] != 5000 {
		t.Errorf("same name in another package = %+v", got[2])
	}
}

func TestThousandsAndMedian(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10002: "10,002", -1234567: "-1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if m := median([]float64{5, 1, 3, 2}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}
