package web_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/web"
)

func TestStreamedMetrics(t *testing.T) {
	main := prometheus.NewRegistry()
	a := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vantage_a", Help: "a"})
	a.Set(1)
	main.MustRegister(a)
	part := prometheus.NewRegistry()
	b := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vantage_b_total", Help: "b"}, []string{"check"})
	b.WithLabelValues("x").Add(3)
	part.MustRegister(b)
	s := web.New(web.Options{Logger: zerolog.Nop(),
		Sources: []web.Source{{Gatherers: []prometheus.Gatherer{main}}, {Gatherers: []prometheus.Gatherer{part}}}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	get := func(path string, hdr map[string]string) (string, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		// A plain transport, so gzip is not transparently undone.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = gz
		}
		body, _ := io.ReadAll(r)
		return string(body), resp.Header
	}
	body, _ := get("/metrics", nil)
	if !strings.Contains(body, "vantage_a 1") || !strings.Contains(body, `vantage_b_total{check="x"} 3`) {
		t.Fatalf("missing families:\n%s", body)
	}
	body, hdr := get("/metrics", map[string]string{"Accept-Encoding": "gzip"})
	if hdr.Get("Content-Encoding") != "gzip" || !strings.Contains(body, "vantage_b_total") {
		t.Fatalf("gzip: %v\n%s", hdr, body)
	}
	body, _ = get("/metrics?name[]=vantage_a", nil)
	if !strings.Contains(body, "vantage_a 1") || strings.Contains(body, "vantage_b_total") {
		t.Fatalf("filter:\n%s", body)
	}
	body, hdr = get("/metrics", map[string]string{"Accept": "application/openmetrics-text;version=1.0.0"})
	if !strings.HasSuffix(body, "# EOF\n") || !strings.Contains(hdr.Get("Content-Type"), "openmetrics") {
		t.Fatalf("openmetrics: %v\n%s", hdr, body)
	}
	// A format the streaming encoder does not write goes through expfmt.
	compact := "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text"
	body, hdr = get("/metrics", map[string]string{"Accept": compact})
	if !strings.Contains(hdr.Get("Content-Type"), "compact-text") || !strings.Contains(body, `name:"vantage_b_total"`) ||
		!strings.Contains(body, `name:"vantage_a"`) {
		t.Fatalf("compact-text fallback: %v\n%s", hdr, body)
	}
	body, _ = get("/metrics?name[]=vantage_b_total", map[string]string{"Accept": compact})
	if strings.Contains(body, `name:"vantage_a"`) || !strings.Contains(body, `name:"vantage_b_total"`) {
		t.Fatalf("compact-text fallback, filtered:\n%s", body)
	}
}
