package web

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/expo"
)

// Source is one part of /metrics. When the negotiated format is one
// expo.Encoder writes (Prometheus text, OpenMetrics 1.0, protobuf), a
// Streamer writes its samples straight to the response; otherwise, and
// for sources without a Streamer, the Gatherers are gathered and encoded
// one after the other. Each family must come from exactly one source.
type Source struct {
	Streamer  expo.Streamer
	Gatherers []prometheus.Gatherer
}

// streamHandler serves /metrics from several sources one after the other.
// client_golang's Gather materialises, checks and sorts every sample of a
// registry at once; with 10,000 targets that is ~400,000 samples, ~100 MB
// of short-lived objects and over a second per scrape. The per-target
// families stream instead (expo.Encoder); the small registries (Go,
// process, scheduler) go through Gather.
//
// A request filtered with name[] only writes the families it names, and
// skips a Streamer's fallback gatherers that have none of them once they
// have been seen (other registries may gain families at any time).
func streamHandler(srcs []Source, log zerolog.Logger) http.Handler {
	var gs []prometheus.Gatherer
	var fixed []bool // the gatherer's families never change (a Streamer's views)
	for _, s := range srcs {
		for _, g := range s.Gatherers {
			gs, fixed = append(gs, g), append(fixed, s.Streamer != nil)
		}
	}
	var mu sync.Mutex
	seen := make([]map[string]bool, len(gs)) // family names per gatherer
	gathered := func(i int, filter map[string]bool) []*dto.MetricFamily {
		if filter != nil && fixed[i] {
			mu.Lock()
			names := seen[i]
			mu.Unlock()
			if names != nil && !intersects(names, filter) {
				return nil
			}
		}
		mfs, err := gs[i].Gather()
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
		out := mfs[:0]
		for _, mf := range mfs {
			if filter == nil || filter[mf.GetName()] {
				out = append(out, mf)
			}
		}
		return out
	}
	// As promhttp's MaxRequestsInFlight: each full scrape at 10,000 targets
	// allocates tens of MB; more than a few at once is a misconfiguration.
	inFlight := make(chan struct{}, maxScrapesInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
			defer func() { <-inFlight }()
		default:
			http.Error(w, "limit of concurrent /metrics requests reached; try again later", http.StatusServiceUnavailable)
			return
		}
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		w.Header().Add("Vary", "Accept")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipWriter(w)
			defer putGzip(gz)
			out = gz
		}
		var filter map[string]bool
		var want func(string) bool
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			filter = map[string]bool{}
			for _, n := range names {
				filter[n] = true
			}
			want = func(n string) bool { return filter[n] }
		}

		if enc, ok := expo.NewEncoder(out, format); ok {
			// Work stops when the client goes away or its scrape timeout
			// (Prometheus says it in a header) passes: at 100,000 targets
			// a scrape computes millions of samples no one would read.
			ctx := r.Context()
			if d, ok := scrapeTimeout(r.Header); ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			enc.SetContext(ctx)
			gi := 0
			for _, s := range srcs {
				if s.Streamer != nil {
					s.Streamer.Stream(enc, want)
					gi += len(s.Gatherers)
					continue
				}
				for range s.Gatherers {
					for _, mf := range gathered(gi, filter) {
						enc.WriteFamily(mf)
					}
					gi++
				}
				if enc.Err() != nil {
					break
				}
			}
			if err := enc.Close(); err != nil {
				if ctx.Err() != nil {
					log.Warn().Err(err).Msg("metrics scrape abandoned: the client went away or its scrape timeout passed")
				} else {
					log.Debug().Err(err).Msg("writing metrics")
				}
			}
			return
		}

		enc := expfmt.NewEncoder(out, format)
		for i := range gs {
			for _, mf := range gathered(i, filter) {
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

const maxScrapesInFlight = 4

// scrapeTimeout is the scraper's own timeout, from the header Prometheus
// sends with every scrape.
func scrapeTimeout(h http.Header) (time.Duration, bool) {
	v := h.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if v == "" {
		return 0, false
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || !(s > 0) || s > 24*3600 {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

// gzip at the fastest level, with klauspost/compress: a full scrape at
// 10,000 targets is ~45 MB of text. Measured on 44 MB of exposition text
// here: compress/gzip's default level 161 ms (2.19 MB), its level 1 78 ms
// (2.58 MB), klauspost's level 1 49 ms (2.55 MB).
var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return gz
}}

func gzipWriter(w io.Writer) *gzip.Writer {
	gz := gzipPool.Get().(*gzip.Writer)
	gz.Reset(w)
	return gz
}

func putGzip(gz *gzip.Writer) {
	_ = gz.Close()
	gzipPool.Put(gz)
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
