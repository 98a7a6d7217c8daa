package web_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/web"
)

var t0 = time.Date(2025, 11, 28, 20, 0, 0, 0, time.UTC)

type apiEnv struct {
	srv   *httptest.Server
	store *storage.Store
	dir   string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	dir := t.TempDir()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	st, err := storage.Open(dir, storage.Options{Logger: log, PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	red := checks.NewRedactor()
	red.Add("s3cr3t-token")
	s := web.New(web.Options{Logger: log, Gatherer: prometheus.NewRegistry()})
	web.NewAPI(web.APIOptions{Store: st, Logger: log, Now: func() time.Time { return t0.Add(time.Hour) }, Redact: red.Redact}).Register(s)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &apiEnv{srv: srv, store: st, dir: dir}
}

func (e *apiEnv) get(t *testing.T, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestTimelineAPI(t *testing.T) {
	e := newAPIEnv(t)
	ctx := t.Context()
	for _, ev := range []storage.Event{
		{Time: t0.Add(-time.Hour), Kind: storage.DaemonStart}, // before the range
		{Time: t0.Add(time.Minute), Kind: storage.TargetDown, TargetKey: "home/direct/lb2", Check: "home", Path: "direct", Node: "lb2",
			Detail: "GET https://www.shop.test/?token=s3cr3t-token: connection refused", RunID: 7},
		{Time: t0.Add(5 * time.Minute), Kind: storage.TargetUp, TargetKey: "home/direct/lb2", Check: "home", Path: "direct", Node: "lb2", Detail: "down for 4m0s"},
	} {
		if _, err := e.store.AppendEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	code, h, body := e.get(t, "/api/v1/timeline?since=2025-11-28T20:00:00Z&until=30m")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s\n%s", code, h.Get("Content-Type"), body)
	}
	if bytes.Contains(body, []byte("s3cr3t")) {
		t.Fatalf("secret in response: %s", body)
	}
	testenv.Golden(t, "timeline.json", body)

	code, h, body = e.get(t, "/api/v1/timeline?since=1h&format=markdown&timezone=Europe/Amsterdam&all=true")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/markdown") {
		t.Fatalf("%d %s\n%s", code, h.Get("Content-Type"), body)
	}
	md := string(body)
	for _, want := range []string{"### Timeline 2025-11-28 21:00:00 – 2025-11-28 22:00:00 CET", "| 21:01:00 | DOWN | home/direct/lb2 |", "<secret>", "| 21:05:00 | UP |"} {
		if !strings.Contains(strings.ReplaceAll(md, "&lt;", "<"), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "vantage started") {
		t.Errorf("event before since included:\n%s", md)
	}

	// No alert fired: by default the outage is counted, not shown.
	_, _, body = e.get(t, "/api/v1/timeline?since=1h&format=markdown&timezone=UTC")
	if md := string(body); !strings.Contains(md, "No incidents") || !strings.Contains(md, "2 events that never paged are left out") || strings.Contains(md, "| DOWN |") {
		t.Errorf("default markdown shows what never paged:\n%s", md)
	}

	for _, bad := range []string{"?since=yesterday", "?since=10m&until=1h", "?format=xml", "?timezone=Mars/Base", "?all=maybe"} {
		code, _, body := e.get(t, "/api/v1/timeline"+bad)
		var r struct{ Status, ErrorType, Error string }
		if code != 400 || json.Unmarshal(body, &r) != nil || r.Status != "error" || r.ErrorType != "bad_data" || r.Error == "" {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

// TestTimelineAPIIncident: an alert that fires makes an incident; the
// JSON lists it under incidents, incident=ID serves it alone in both
// formats, and an unknown ID is a 404 naming the known ones.
func TestTimelineAPIIncident(t *testing.T) {
	e := newAPIEnv(t)
	for _, ev := range []storage.Event{
		{Time: t0.Add(time.Minute), Kind: storage.AlertPending, Alert: "Slow", Check: "home", Path: "direct", Node: "lb1", Detail: "p99 = 1.6s"},
		{Time: t0.Add(10 * time.Minute), Kind: storage.AlertFiring, Alert: "Degraded", Node: "lb2", Detail: "node_degraded = 1"},
		{Time: t0.Add(10*time.Minute + time.Second), Kind: storage.NotificationSent, Alert: "Degraded", Node: "lb2", Notifier: "hook", Detail: "firing"},
		{Time: t0.Add(15 * time.Minute), Kind: storage.AlertResolved, Alert: "Degraded", Node: "lb2"},
	} {
		if _, err := e.store.AppendEvent(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	const id = "20251128-201000-lb2"
	var r struct {
		Data struct {
			Events    []map[string]any
			Incidents []struct {
				ID, What, Notified string
				Paged              bool
				EventIDs           []int64 `json:"event_ids"`
			}
		}
	}
	code, _, body := e.get(t, "/api/v1/timeline?since=2025-11-28T20:00:00Z&until=30m&timezone=UTC")
	if err := json.Unmarshal(body, &r); code != 200 || err != nil || len(r.Data.Events) != 4 || len(r.Data.Incidents) != 1 {
		t.Fatalf("%d %v %s", code, err, body)
	}
	if in := r.Data.Incidents[0]; in.ID != id || in.What != "node lb2" || !in.Paged || in.Notified != "2025-11-28T20:10:01Z" || len(in.EventIDs) != 3 {
		t.Errorf("incident: %+v", in)
	}
	_, _, body = e.get(t, "/api/v1/timeline?since=2025-11-28T20:00:00Z&until=30m&all=true")
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data.Incidents) != 2 || r.Data.Incidents[0].Paged {
		t.Errorf("all=true: %s", body)
	}
	_, _, body = e.get(t, "/api/v1/timeline?since=2025-11-28T20:00:00Z&until=30m&incident="+id)
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data.Incidents) != 1 || len(r.Data.Events) != 3 {
		t.Errorf("incident=%s: %s", id, body)
	}
	code, h, body := e.get(t, "/api/v1/timeline?since=2025-11-28T20:00:00Z&until=30m&format=markdown&timezone=UTC&incident="+id)
	if md := string(body); code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/markdown") ||
		!strings.HasPrefix(md, "### Incident "+id+": node lb2\n") || strings.Contains(md, "lb1") {
		t.Errorf("markdown incident: %d\n%s", code, md)
	}
	code, _, body = e.get(t, "/api/v1/timeline?since=2025-11-28T20:00:00Z&until=30m&format=markdown&incident=nope")
	if code != 404 || !strings.Contains(string(body), `"errorType": "not_found"`) || !strings.Contains(string(body), id) {
		t.Errorf("unknown incident: %d %s", code, body)
	}
}

// TestTimelineAPIOutOfRange: times the store cannot hold are 400
// bad_data in both formats (they were a 500 "encoding response" that
// logged nothing, and Markdown accepted the inverted range they made).
func TestTimelineAPIOutOfRange(t *testing.T) {
	e := newAPIEnv(t)
	for _, q := range []string{
		"since=99999999999999999999",
		"since=99999999999999999999&format=markdown",
		"until=99999999999999999999",
		"until=99999999999999999999&format=markdown",
		"since=1e300",
		"since=0001-01-01T00:00:00Z&format=markdown",
		"since=1h&until=9999-12-31T23:59:59Z",
		"since=10m&until=1h&format=markdown",
	} {
		code, h, body := e.get(t, "/api/v1/timeline?"+q)
		var r struct{ Status, ErrorType, Error string }
		if code != 400 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal(body, &r) != nil ||
			r.Status != "error" || r.ErrorType != "bad_data" || !(strings.Contains(r.Error, "out of range") || strings.Contains(r.Error, "is after until")) {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
}

// TestAPIServerErrorLogged: a 500 is always logged, with its cause.
func TestAPIServerErrorLogged(t *testing.T) {
	var logs testenv.LogBuffer
	log := zerolog.New(&logs)
	dir := t.TempDir()
	st, err := storage.Open(dir, storage.Options{Logger: log, PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := web.New(web.Options{Logger: log, Gatherer: prometheus.NewRegistry()})
	web.NewAPI(web.APIOptions{Store: st, Logger: log}).Register(s)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	// Break the real database from another connection: reads now fail.
	db, err := sql.Open("sqlite", filepath.Join(dir, storage.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TABLE events"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	resp, err := http.Get(srv.URL + "/api/v1/timeline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), `"errorType": "internal"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), `"level":"error"`) || !strings.Contains(logs.String(), "API request failed") {
		t.Errorf("the 500 was not logged:\n%s", logs.String())
	}
}

func TestRunAPI(t *testing.T) {
	e := newAPIEnv(t)
	ctx := t.Context()
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	// Named as the browser names a run's files (the API serves no others).
	stem := probe.ArtifactStem("home", "direct", "lb2", t0)
	writeArtifact(t, e.dir, stem+".png", png)
	writeArtifact(t, e.dir, stem+".html", []byte("<script>alert(1)</script>"))
	steps, _ := json.Marshal([]storage.Step{{Name: "home", URL: "https://www.shop.test/?k=s3cr3t-token", Result: "error",
		Reason: "connection refused", Start: t0, Duration: 0.031}})
	reqs, _ := json.Marshal([]storage.Request{{URL: "https://static.shop-cdn.test/app.js", Domain: "static.shop-cdn.test",
		Method: "GET", Result: "failed", Failure: "net::ERR_CONNECTION_REFUSED", Start: t0, Duration: 0.002, Type: "script"}})
	id, err := e.store.RecordRun(ctx, storage.Run{TargetKey: "home/direct/lb2", Check: "home", Path: "direct", Node: "lb2",
		Start: t0, Duration: 31 * time.Millisecond, Result: "error", Reason: "GET https://www.shop.test/: connection refused",
		Steps: steps, Requests: reqs, Artifacts: []string{stem + ".html", stem + ".png"}})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := e.store.RecordRun(ctx, storage.Run{TargetKey: "api/direct", Check: "api", Start: t0, Result: "success"})
	outside := filepath.Join(t.TempDir(), "passwd.png")
	os.WriteFile(outside, []byte("secret file"), 0o600)
	evil, _ := e.store.RecordRun(ctx, storage.Run{TargetKey: "x", Start: t0, Result: "failure",
		Artifacts: []string{"../" + filepath.Base(filepath.Dir(outside)) + "/passwd.png", outside, storage.FileName,
			filepath.Join(e.dir, storage.FileName), probe.ArtifactStem("", "", "", t0) + ".png"}})
	link := filepath.Join(e.dir, filepath.FromSlash(probe.ArtifactStem("", "", "", t0))+".png")
	if err := os.MkdirAll(filepath.Dir(link), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(e.dir, storage.FileName), link); err != nil {
		t.Fatal(err)
	}

	code, _, body := e.get(t, "/api/v1/runs/"+itoa(id))
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if bytes.Contains(body, []byte("s3cr3t")) {
		t.Fatalf("secret in run: %s", body)
	}
	testenv.Golden(t, "run.json", body)

	// A run without steps or artifacts still has lists, not nulls.
	_, _, body = e.get(t, "/api/v1/runs/"+itoa(plain))
	var pr struct{ Data map[string]any }
	json.Unmarshal(body, &pr)
	if _, ok := pr.Data["steps"].([]any); !ok || pr.Data["screenshot_url"] != nil {
		t.Fatalf("plain run: %s", body)
	}

	code, h, body := e.get(t, "/api/v1/runs/"+itoa(id)+"/screenshot.png")
	if code != 200 || h.Get("Content-Type") != "image/png" || !bytes.Equal(body, png) {
		t.Fatalf("screenshot: %d %s %q", code, h.Get("Content-Type"), body)
	}
	// Non-images are downloads, never rendered in our origin.
	code, h, _ = e.get(t, "/api/v1/runs/"+itoa(id)+"/artifacts/0")
	if code != 200 || h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("html artifact: %d %v", code, h)
	}

	for path, want := range map[string]int{
		"/api/v1/runs/" + itoa(plain) + "/screenshot.png":              404, // no screenshot
		"/api/v1/runs/999/screenshot.png":                              404,
		"/api/v1/runs/999":                                             404,
		"/api/v1/runs/abc":                                             400,
		"/api/v1/runs/-1":                                              400,
		"/api/v1/runs/" + itoa(evil) + "/screenshot.png":               404, // stored path escapes the dir
		"/api/v1/runs/" + itoa(evil) + "/artifacts/1":                  404, // absolute path elsewhere
		"/api/v1/runs/" + itoa(evil) + "/artifacts/2":                  404, // the database, listed by a tampered row
		"/api/v1/runs/" + itoa(evil) + "/artifacts/3":                  404, // the database by absolute path
		"/api/v1/runs/" + itoa(evil) + "/artifacts/4":                  404, // the run's own name, a symlink to the database
		"/api/v1/runs/" + itoa(id) + "/artifacts/2":                    404,
		"/api/v1/runs/" + itoa(id) + "/artifacts/..%2f..%2fvantage.db": 404,
	} {
		code, _, body := e.get(t, path)
		if code != want || bytes.Contains(body, []byte("secret file")) || bytes.Contains(body, []byte("SQLite format")) {
			t.Errorf("GET %s = %d %s, want %d", path, code, body, want)
		}
	}
}

// writeArtifact writes a file at rel under the storage directory dir.
func writeArtifact(t *testing.T, dir, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
