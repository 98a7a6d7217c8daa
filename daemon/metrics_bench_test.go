package daemon

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
)

// discardWriter is a ResponseWriter that only counts the body.
type discardWriter struct {
	h http.Header
	n int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(int)     {}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkMetricsScrape10kTargets is a full /metrics request at 10,002
// plain HTTP targets (3,334 checks × 3 nodes, one step each) with the
// default two quantile windows, as Prometheus would send it: ms/scrape per
// negotiated format, with and without gzip.
func BenchmarkMetricsScrape10kTargets(b *testing.B) {
	file := benchConfig(b, b.TempDir(), "{interval: 10s, timeout: 5s}", 3334)
	d, err := New(Options{ConfigFile: file, Logger: zerolog.Nop(), Kinds: kinds.Registry()})
	if err != nil {
		b.Fatal(err)
	}
	d.apply(d.cfg, d.paths)
	targets := d.sched.Targets()
	if len(targets) != 10002 {
		b.Fatalf("%d targets", len(targets))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	now := time.Now()
	for run := range 6 {
		for i, t := range targets {
			res := probe.Success
			if (i+run)%50 == 0 {
				res = probe.Failure
			}
			dur := time.Duration(5+rng.IntN(80)) * time.Millisecond
			out := &probe.Outcome{Result: res, Start: now.Add(time.Duration(run-6) * 10 * time.Second), Duration: dur,
				Steps: []probe.StepResult{{Name: "1", Result: res, StatusCode: 200, Duration: dur,
					Phases: probe.Phases{Connect: dur / 10, Processing: dur / 2, Transfer: dur / 5, DNS: dur / 20, HasDNS: true}}}}
			o := &probe.Observation{Target: t, Outcome: out, Up: true, Interval: 10 * time.Second}
			d.metrics.Observe(o)
			d.stats.Observe(o)
		}
	}
	h := d.web.Handler()
	for _, f := range []struct{ name, accept, enc string }{
		{"text", "text/plain;version=0.0.4", ""},
		{"text-gzip", "text/plain;version=0.0.4", "gzip"},
		{"openmetrics-gzip", "application/openmetrics-text;version=1.0.0", "gzip"},
		{"protobuf-gzip", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "gzip"},
	} {
		b.Run(f.name, func(b *testing.B) {
			var bytes int64
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept", f.accept)
				if f.enc != "" {
					req.Header.Set("Accept-Encoding", f.enc)
				}
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				bytes = w.n
			}
			if bytes < 1<<20 {
				b.Fatalf("only %d bytes", bytes)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/scrape")
			b.ReportMetric(float64(bytes)/1e6, "MB/scrape")
		})
	}
}
