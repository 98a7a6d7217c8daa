package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/web"
)

// FuzzAPIQuery sends arbitrary query strings to /api/v1/timeline and
// arbitrary run ids to /api/v1/runs/{id}: bad input is a 4xx with the
// API's error envelope, never a 5xx (docs/fuzzing.md).
func FuzzAPIQuery(f *testing.F) {
	for _, s := range []struct{ query, id string }{
		{"since=99999999999999999999", "1"},
		{"until=99999999999999999999", "99999999999999999999"},
		{"since=99999999999999999999&format=markdown", "-1"},
		{"since=2025-11-28T20:00:00Z&until=30m", "0"},
		{"since=now&until=2h&format=markdown", "1e3"},
		{"since=1e300&until=1e301", "0x10"},
		{"since=-1", ""},
		{"since=NaN&until=Inf", "%00"},
		{"since=9999-12-31T23:59:59Z&until=9999-12-31T23:59:59.999999999Z", "../../vantage.db"},
		{"since=0001-01-01T00:00:00Z&format=markdown", "1/screenshot.png"},
		{"since=-9999-01-01T00:00:00Z", "1/artifacts/-1"},
		{"since=292277026596y", "1/artifacts/99999999999999999999"},
		{"since=1y&timezone=Europe/Amsterdam&format=markdown", "2"},
		{"timezone=../../../../etc/passwd", "3"},
		{"timezone=/etc/localtime&format=json", "4"},
		{"timezone=Local&format=xml", "5"},
		{"format=markdown&format=json&since=;&until=%zz", "6"},
		{"since=1764360000.999999999&until=1764363600", "7"},
		{"since=\xff\xfe&until=%ff", "\xff"},
	} {
		f.Add(s.query, s.id)
	}
	dir := f.TempDir()
	st, err := storage.Open(dir, storage.Options{Logger: zerolog.Nop(), PruneInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	t0 := time.Date(2025, 11, 28, 20, 0, 0, 0, time.UTC)
	for _, ev := range []storage.Event{
		{Time: t0.Add(time.Minute), Kind: storage.TargetDown, TargetKey: "home/direct/lb2", Check: "home", Path: "direct", Node: "lb2", Detail: "connection refused"},
		{Time: t0.Add(5 * time.Minute), Kind: storage.TargetUp, TargetKey: "home/direct/lb2", Check: "home", Path: "direct", Node: "lb2", Detail: "down for 4m0s"},
	} {
		if _, err := st.AppendEvent(f.Context(), ev); err != nil {
			f.Fatal(err)
		}
	}
	red := checks.NewRedactor()
	s := web.New(web.Options{Logger: zerolog.Nop(), Gatherer: prometheus.NewRegistry()})
	web.NewAPI(web.APIOptions{Store: st, Logger: zerolog.Nop(), Now: func() time.Time { return t0.Add(time.Hour) }, Redact: red.Redact}).Register(s)
	h := s.Handler()

	f.Fuzz(func(t *testing.T, query, id string) {
		defer testenv.HangGuard()()
		get := func(u *url.URL) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: "vantage.test", RequestURI: u.RequestURI()})
			if rec.Code >= 500 {
				t.Fatalf("GET %s: %d %s", u.RequestURI(), rec.Code, rec.Body)
			}
			return rec
		}
		rec := get(&url.URL{Path: "/api/v1/timeline", RawQuery: query})
		var env struct {
			Status    string          `json:"status"`
			ErrorType string          `json:"errorType"`
			Error     string          `json:"error"`
			Data      json.RawMessage `json:"data"`
		}
		switch {
		case rec.Code == http.StatusBadRequest:
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Status != "error" || env.ErrorType != "bad_data" || env.Error == "" {
				t.Fatalf("?%s: 400 without the error envelope: %s", query, rec.Body)
			}
		case rec.Code != http.StatusOK:
			t.Fatalf("?%s: %d %s", query, rec.Code, rec.Body)
		case strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json"):
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Status != "success" || len(env.Data) == 0 {
				t.Fatalf("?%s: 200 with %s", query, rec.Body)
			}
		case !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/markdown"):
			t.Fatalf("?%s: 200 with Content-Type %q", query, rec.Header().Get("Content-Type"))
		}
		for _, p := range []string{"/api/v1/runs/", "/api/v1/runs/1/artifacts/"} {
			rec := get(&url.URL{Path: p + id, RawPath: p + url.PathEscape(id)})
			if rec.Code == http.StatusOK {
				t.Fatalf("%s%q: 200 from an empty store: %s", p, id, rec.Body)
			}
		}
	})
}
