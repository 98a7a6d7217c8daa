package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/web"
)

// slowStreamer emits one sample a millisecond until its emitter reports an
// error (or a bound no test should reach), and records why it stopped.
type slowStreamer struct {
	fam     *expo.Family
	started chan struct{}
	stopped chan error // the emitter's error when it stopped; nil at the bound
	n       atomic.Int64
}

func (s *slowStreamer) Stream(e expo.Emitter, _ func(string) bool) {
	p := expo.LabelPairs{}.With("check", "a")
	close(s.started)
	for i := range 120000 {
		if err := e.Err(); err != nil {
			s.stopped <- err
			return
		}
		e.Gauge(s.fam, p, float64(i))
		s.n.Add(1)
		time.Sleep(time.Millisecond)
	}
	s.stopped <- nil
}

func newSlow() *slowStreamer {
	return &slowStreamer{fam: expo.NewFamily("vantage_slow", "slow", dto.MetricType_GAUGE, []string{"check"}),
		started: make(chan struct{}), stopped: make(chan error, 1)}
}

// TestScrapeStopsAtScraperTimeout: a scrape that cannot finish within the
// timeout Prometheus announces stops computing samples on the server.
func TestScrapeStopsAtScraperTimeout(t *testing.T) {
	slow := newSlow()
	srv := httptest.NewServer(web.New(web.Options{Logger: zerolog.Nop(),
		Sources: []web.Source{{Streamer: slow}}}).Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "0.3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // the server ends the body when it stops
	resp.Body.Close()
	select {
	case err := <-slow.stopped:
		if err == nil {
			t.Fatalf("the streamer ran to its bound (%d samples) past the scrape timeout", slow.n.Load())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still streaming 60s after a 0.3s scrape timeout (%d samples)", slow.n.Load())
	}
}

// TestScrapeStopsWhenClientGoesAway: a client that gives up (its own
// timeout, without saying so in a header) stops the server's work too.
func TestScrapeStopsWhenClientGoesAway(t *testing.T) {
	slow := newSlow()
	srv := httptest.NewServer(web.New(web.Options{Logger: zerolog.Nop(),
		Sources: []web.Source{{Streamer: slow}}}).Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/metrics", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-slow.started
	cancel()
	<-done
	select {
	case err := <-slow.stopped:
		if err == nil {
			t.Fatalf("the streamer ran to its bound (%d samples) after the client left", slow.n.Load())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still streaming 60s after the client left (%d samples)", slow.n.Load())
	}
}
