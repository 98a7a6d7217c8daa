package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"
)

// streamHandler serves /metrics from several gatherers one after the other,
// encoding each one's families before gathering the next. client_golang's
// Gather materialises every sample of a registry at once; with 10,000
// targets that is ~400,000 samples and ~200 MB of short-lived objects per
// scrape. Gathering the large per-target families one registry at a time
// bounds the peak to the largest of them. Each family must live in exactly
// one gatherer.
//
// A request filtered with name[] skips the per-family gatherers (all but the
// first) whose families it does not ask for, once they have been seen.
func streamHandler(gs []prometheus.Gatherer, log zerolog.Logger) http.Handler {
	var mu sync.Mutex
	seen := make([]map[string]bool, len(gs)) // family names per gatherer
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		w.Header().Add("Vary", "Accept")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			out = gz
		}
		var filter map[string]bool
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			filter = map[string]bool{}
			for _, n := range names {
				filter[n] = true
			}
		}
		enc := expfmt.NewEncoder(out, format)
		for i, g := range gs {
			if filter != nil && i > 0 {
				mu.Lock()
				names := seen[i]
				mu.Unlock()
				if names != nil && !intersects(names, filter) {
					continue
				}
			}
			mfs, err := g.Gather()
			if err != nil {
				// As promhttp's ContinueOnError: serve what was gathered.
				log.Warn().Err(err).Msg("gathering metrics")
			}
			if len(mfs) > 0 {
				names := make(map[string]bool, len(mfs))
				for _, mf := range mfs {
					names[mf.GetName()] = true
				}
				mu.Lock()
				seen[i] = names
				mu.Unlock()
			}
			for _, mf := range mfs {
				if filter != nil && !filter[mf.GetName()] {
					continue
				}
				if err := enc.Encode(mf); err != nil {
					log.Debug().Err(err).Msg("writing metrics")
					return
				}
			}
		}
		if c, ok := enc.(expfmt.Closer); ok {
			_ = c.Close() // the OpenMetrics "# EOF"
		}
	})
}

func intersects(a, b map[string]bool) bool {
	for k := range b {
		if a[k] {
			return true
		}
	}
	return false
}

func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}
