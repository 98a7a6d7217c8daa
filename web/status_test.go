package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/web"
)

// fixedSource is a web.StatusSource over fixed data.
type fixedSource struct {
	checks  []web.CheckStatus
	domains []web.DomainStatus
	alerts  []web.AlertStatus
	events  []storage.Event
}

func (f *fixedSource) Checks(context.Context) []web.CheckStatus   { return f.checks }
func (f *fixedSource) Domains(context.Context) []web.DomainStatus { return f.domains }
func (f *fixedSource) Alerts(context.Context) []web.AlertStatus   { return f.alerts }
func (f *fixedSource) Events(_ context.Context, n int) ([]storage.Event, error) {
	if len(f.events) > n {
		return f.events[len(f.events)-n:], nil
	}
	return f.events, nil
}

func fp(v float64) *float64 { return &v }

// win is a window's figures with latency around base seconds.
func win(w time.Duration, runs, ok int, base float64) web.WindowStatus {
	ws := web.WindowStatus{Window: model.Duration(w), Runs: runs}
	if runs > 0 {
		ws.SuccessRatio = fp(float64(ok) / float64(runs))
	}
	if ok > 0 {
		ws.P50, ws.P90, ws.P99 = fp(base), fp(base*1.5), fp(base*2)
	}
	return ws
}

func target(check, typ, path, node, state, result string, base float64) web.CheckStatus {
	key := check + "/" + path + "/" + node
	c := web.CheckStatus{Target: key, Check: check, Type: typ, Pages: typ == "browser", Path: path, Node: node, State: state, LastResult: result,
		Labels: map[string]string{"check": check, "type": typ, "path": path, "node": node, "location": "ams1"}}
	if state != web.StateUnknown {
		c.LastRunAt = t0.Add(59 * time.Minute)
		c.LastDuration = base
		ok := 60
		if result != "success" {
			ok = 30
		}
		if state == web.StateDown {
			ok = 0
		}
		c.Windows = []web.WindowStatus{win(time.Minute, 60, ok, base), win(5*time.Minute, 300, 300-60+ok, base)}
	} else {
		c.Windows = []web.WindowStatus{}
	}
	return c
}

// incident is the evening of the README's story: lb2 refuses, lb3 is slow on one
// path, the CDN domain fails for the browser journey, an alert flaps.
func incident() *fixedSource {
	var cs []web.CheckStatus
	for _, p := range []string{"alt-source", "direct"} {
		for i, n := range []string{"lb1", "lb2", "lb3"} {
			c := target("shop-home", "http", p, n, web.StateUp, "success", 0.012)
			c.Labels["route"] = "home"
			switch {
			case n == "lb2":
				c = target("shop-home", "http", p, n, web.StateDown, "error", 0.012)
				c.Labels["route"] = "home"
				c.LastReason = "GET https://user:hunter2@www.shop.test/?token=s3cr3t-token: dial tcp 127.0.0.12:443: connect: connection refused"
				c.LastFailedRunID = 7
			case n == "lb3" && p == "direct":
				c = target("shop-home", "http", p, n, web.StateUp, "success", 0.060)
				c.Labels["route"] = "home"
				c.NodeSlowdown = fp(4.2)
			default:
				c.NodeSlowdown = fp(1)
			}
			c.NodeAddress = fmt.Sprintf("127.0.0.%d", 11+i)
			cs = append(cs, c)
		}
	}
	cs = append(cs,
		target("cdn-static", "tcp", "direct", "", web.StateUp, "success", 0.002),
		target("cdn-static", "tcp", "alt-source", "", web.StateUp, "failure", 0.002),
		target("new-check", "dns", "direct", "", web.StateUnknown, "", 0),
	)
	wc := target("web-checkout", "browser", "direct", "lb1", web.StateUp, "failure", 1.4)
	wc.LastReason = "step 02-click: waiting for #add-to-cart: context deadline exceeded"
	wc.LastFailedRunID = 9
	cs = append(cs, wc)
	for i := range cs {
		if cs[i].LastResult == "failure" && cs[i].LastReason == "" {
			cs[i].LastReason = "TLS handshake: certificate expired"
		}
	}
	return &fixedSource{
		checks: cs,
		domains: []web.DomainStatus{
			{Target: "web-checkout/direct/lb1", Check: "web-checkout", Path: "direct", Node: "lb1", Domain: "static.shop-cdn.test", Window: win(time.Minute, 40, 10, 0.2)},
			{Target: "web-checkout/direct/lb1", Check: "web-checkout", Path: "direct", Node: "lb1", Domain: "www.shop.test", Window: win(time.Minute, 40, 40, 0.05)},
		},
		alerts: []web.AlertStatus{
			{Name: "LoadBalancerNodeDegraded", Key: "LoadBalancerNodeDegraded{node=lb2}", State: "firing",
				Labels:      map[string]string{"alertname": "LoadBalancerNodeDegraded", "node": "lb2", "severity": "page", "location": "ams1"},
				Annotations: map[string]string{"summary": "load-balancer node lb2 is 5.1x slower than its siblings", "fired_count": "3", "flapping": "true"},
				Value:       fp(5.1), ValueText: "5.1", Measure: "node_slowdown",
				ActiveAt: t0.Add(40 * time.Minute), FiredAt: t0.Add(41 * time.Minute), FiredCount: 3, FirstFiredAt: t0.Add(5 * time.Minute), Flapping: true},
			{Name: "ShopSlowForCustomers", Key: "ShopSlowForCustomers{check=shop-home,node=lb3,path=direct}", State: "pending",
				Labels:      map[string]string{"alertname": "ShopSlowForCustomers", "check": "shop-home", "path": "direct", "node": "lb3", "severity": "page"},
				Annotations: map[string]string{"summary": "shop-home p99 1.8s via direct node lb3 (token s3cr3t-token)", "fired_count": "0"},
				Value:       fp(1.8), ValueText: "1.8s", Measure: "p99", ActiveAt: t0.Add(59 * time.Minute),
				InhibitedBy: "LoadBalancerNodeDegraded|node=lb3"},
			{Name: "ShopSlowForCustomers", Key: "ShopSlowForCustomers{check=shop-home,node=lb1,path=direct}", State: "resolved",
				Labels:      map[string]string{"alertname": "ShopSlowForCustomers", "check": "shop-home", "path": "direct", "node": "lb1", "severity": "page"},
				Annotations: map[string]string{"summary": "shop-home p99 1.6s via direct node lb1", "fired_count": "1", "resolution": "resolved after 2m; fired once in the last hour"},
				Value:       fp(0.4), ValueText: "400ms", Measure: "p99", ActiveAt: t0.Add(10 * time.Minute), FiredAt: t0.Add(11 * time.Minute),
				ResolvedAt: t0.Add(13 * time.Minute), FiredCount: 1, FirstFiredAt: t0.Add(11 * time.Minute)},
		},
		events: []storage.Event{
			{ID: 1, Time: t0, Kind: storage.DaemonStart, Detail: "5 checks, 12 targets"},
			{ID: 2, Time: t0.Add(2 * time.Minute), Kind: storage.TargetDown, TargetKey: "shop-home/direct/lb2", Check: "shop-home", Path: "direct", Node: "lb2",
				Detail: "GET https://admin:pw@www.shop.test/: connection refused", RunID: 7},
			{ID: 3, Time: t0.Add(41 * time.Minute), Kind: storage.AlertFiring, Alert: "LoadBalancerNodeDegraded", Node: "lb2", Detail: "node_slowdown 5.1 > 3"},
		},
	}
}

type statusEnv struct {
	srv   *httptest.Server
	store *storage.Store
	src   *fixedSource
	st    *web.Status
}

func newStatusEnv(t testing.TB, src *fixedSource, withStore bool) *statusEnv {
	t.Helper()
	e := newStatusEnvWith(t, src, withStore)
	e.src = src
	return e
}

// newStatusEnvSource serves any source's page, with storage.
func newStatusEnvSource(t testing.TB, src web.StatusSource) *statusEnv {
	t.Helper()
	return newStatusEnvWith(t, src, true)
}

func newStatusEnvWith(t testing.TB, src web.StatusSource, withStore bool) *statusEnv {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	e := &statusEnv{}
	if withStore {
		st, err := storage.Open(t.TempDir(), storage.Options{Logger: log, PruneInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		e.store = st
	}
	red := checks.NewRedactor()
	red.Add("s3cr3t-token")
	s := web.New(web.Options{Logger: log, Gatherer: prometheus.NewRegistry()})
	st, err := web.NewStatus(web.StatusOptions{Source: src, Store: e.store, Logger: log, Redact: red.Redact,
		Now: func() time.Time { return t0.Add(time.Hour) }, Title: "vantage · ams1"})
	if err != nil {
		t.Fatal(err)
	}
	st.Register(s)
	e.st = st
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *statusEnv) get(t *testing.T, path string) (int, string, []byte) {
	t.Helper()
	a := &apiEnv{srv: e.srv}
	code, h, b := a.get(t, path)
	return code, h.Get("Content-Type"), b
}

func assertNoSecrets(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, s := range []string{"s3cr3t", "hunter2", "user:", "admin:pw"} {
		if bytes.Contains(body, []byte(s)) {
			t.Errorf("%s reveals %q:\n%s", what, s, body)
		}
	}
}

func TestChecksAndAlertsAPI(t *testing.T) {
	e := newStatusEnv(t, incident(), true)
	code, ctype, body := e.get(t, "/api/v1/checks")
	if code != 200 || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("%d %s %s", code, ctype, body)
	}
	assertNoSecrets(t, "/api/v1/checks", body)
	testenv.Golden(t, "checks.json", body)

	var doc struct {
		Status string
		Data   struct{ Checks []web.CheckStatus }
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Status != "success" {
		t.Fatalf("%v %s", err, body)
	}
	var lb2 *web.CheckStatus
	for i := range doc.Data.Checks {
		if doc.Data.Checks[i].Target == "shop-home/direct/lb2" {
			lb2 = &doc.Data.Checks[i]
		}
	}
	if lb2 == nil || lb2.State != "down" || lb2.NodeAddress != "127.0.0.12" || lb2.LastFailedRunID != 7 || *lb2.Windows[0].SuccessRatio != 0 || lb2.Windows[0].P50 != nil {
		t.Fatalf("lb2: %+v", lb2)
	}
	// The source's data is not modified by redaction on the way out.
	if !strings.Contains(e.src.checks[1].LastReason, "s3cr3t") {
		t.Fatal("the API redacted the source's own copy")
	}

	code, _, body = e.get(t, "/api/v1/alerts")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	assertNoSecrets(t, "/api/v1/alerts", body)
	testenv.Golden(t, "alerts.json", body)
}

func TestChecksAPIEmpty(t *testing.T) {
	e := newStatusEnv(t, &fixedSource{}, false)
	for path, want := range map[string]string{"/api/v1/checks": `"checks": []`, "/api/v1/alerts": `"alerts": []`} {
		code, _, body := e.get(t, path)
		if code != 200 || !bytes.Contains(body, []byte(want)) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	// Without storage the page renders, without events or run links.
	code, _, body := e.get(t, "/")
	if code != 200 || !bytes.Contains(body, []byte("No targets yet")) || bytes.Contains(body, []byte("Latest events")) {
		t.Fatalf("%d %s", code, body)
	}
	if code, _, _ := e.get(t, "/runs/1"); code != 404 {
		t.Fatalf("run page without storage: %d", code)
	}
}

// cellRE finds a grid cell by its target and captures its class and body.
func cell(t *testing.T, page, target string) (class, body string) {
	t.Helper()
	re := regexp.MustCompile(`<td class="([^"]*)" data-target="` + regexp.QuoteMeta(target) + `"[^>]*>([\s\S]*?)</td>`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no cell for %s in page", target)
	}
	return m[1], m[2]
}

func TestStatusPage(t *testing.T) {
	e := newStatusEnv(t, incident(), true)
	code, ctype, body := e.get(t, "/")
	if code != 200 || ctype != "text/html; charset=utf-8" {
		t.Fatalf("%d %s", code, ctype)
	}
	assertNoSecrets(t, "/", body)
	page := string(body)

	// The bad node is a red cell with a text label, linking to its run,
	// and stands out against its healthy siblings.
	class, b := cell(t, page, "shop-home/direct/lb2")
	if class != "cell down outlier" || !strings.Contains(b, ">DOWN<") || !strings.Contains(b, `href="/runs/7"`) ||
		!strings.Contains(b, "other nodes are up") || !strings.Contains(b, "connection refused") {
		t.Errorf("lb2 cell: %q\n%s", class, b)
	}
	// Without the node detector, lb3's p90 4.2× its siblings' is shown
	// but does not frame it: 90 ms against 21 ms is within the noise.
	class, b = cell(t, page, "shop-home/direct/lb3")
	if class != "cell up" || !strings.Contains(b, "×4.2") || !strings.Contains(b, "p90</abbr> 90.0ms") || strings.Contains(b, "href") {
		t.Errorf("lb3 cell: %q\n%s", class, b)
	}
	class, b = cell(t, page, "shop-home/alt-source/lb1")
	if class != "cell up" || !strings.Contains(b, "100% ok") || !strings.Contains(b, "p50</abbr> 12.0ms") {
		t.Errorf("lb1 cell: %q\n%s", class, b)
	}
	// A path failing while the other path is fine; a failed last run
	// under UP is "failing"; no data is said, not just greyed.
	class, b = cell(t, page, "cdn-static/alt-source/")
	if class != "cell failing outlier" || !strings.Contains(b, "other paths are up") || !strings.Contains(b, "50.0% ok") {
		t.Errorf("cdn-static alt-source: %q\n%s", class, b)
	}
	if class, b = cell(t, page, "new-check/direct/"); class != "cell unknown" || !strings.Contains(b, "NO DATA") {
		t.Errorf("new-check: %q\n%s", class, b)
	}
	// Checks in trouble come first.
	if i, j := strings.Index(page, `id="check-shop-home"`), strings.Index(page, `id="check-new-check"`); i < 0 || j < 0 || i > j {
		t.Errorf("shop-home (bad) should precede new-check: %d %d", i, j)
	}
	for _, want := range []string{
		// alerts: firing first, flapping said, resolved non-flapping hidden
		"LoadBalancerNodeDegraded", `<span class="badge flapping">flapping</span>`, "3×", "19m ago", "ShopSlowForCustomers",
		// an alert folded into a node alert says so
		`<span class="badge folded" title="paged as part of the node alert">folded into LoadBalancerNodeDegraded</span>`,
		// the failing domain with its ratio and the run that shows it
		"static.shop-cdn.test</th><td>25.0%<span class=\"lbl\"> ok</span></td><td>30 of 40<span class=\"lbl\"> failed</span></td>", `<a href="/runs/9">run 9</a>`,
		// events, newest first, with a link to the run
		"alert firing", `<a href="/runs/7">run</a>`, "connection refused",
		// accessibility: headers, labels
		`<th scope="col">lb2 <span class="addr">127.0.0.12</span></th>`, `<th scope="row">direct</th>`, `aria-label="shop-home via direct, node lb2: DOWN, other nodes are up — open the latest failed run"`,
		`<html lang="en">`, `name="viewport"`, `src="/assets/status.js"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "www.shop.test</th><td>") {
		t.Error("a healthy domain is listed as failing")
	}
	// Firing first; the pending and the resolved alert fold away.
	if n := strings.Count(page, `class="alert `); n != 3 || !strings.Contains(page, `<tr class="alert firing">`) {
		t.Errorf("want 3 alerts shown (firing, pending, resolved), got %d", n)
	}
	if p, r := section(page, "alerts-pending"), section(page, "alerts-resolved"); !strings.Contains(p, "node=lb3") || !strings.Contains(r, "node=lb1") {
		t.Errorf("pending and resolved alerts are not folded away:\n%s", section(page, "alerts"))
	}
	if i, j := strings.Index(page, "alert firing"), strings.Index(page, "daemon start"); i < 0 || j < 0 || i > j {
		t.Error("events are not newest first")
	}

	// The fragment is the live part only, for the refresh script.
	_, _, frag := e.get(t, "/?fragment=1")
	if bytes.Contains(frag, []byte("<html")) || !bytes.Contains(frag, []byte(`data-target="shop-home/direct/lb2"`)) {
		t.Errorf("fragment: %.200s", frag)
	}
	// Assets are embedded and served with their types.
	for path, ctype := range map[string]string{"/assets/status.css": "text/css", "/assets/status.js": "text/javascript", "/assets/favicon.svg": "image/svg+xml"} {
		code, got, body := e.get(t, path)
		if code != 200 || !strings.HasPrefix(got, ctype) || len(body) == 0 {
			t.Errorf("%s: %d %s", path, code, got)
		}
	}
	if code, _, _ := e.get(t, "/nope"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

func TestRunPage(t *testing.T) {
	e := newStatusEnv(t, incident(), true)
	dir := e.store.ArtifactDir()
	if err := os.WriteFile(filepath.Join(dir, "run-1.png"), []byte("\x89PNG\r\n\x1a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps, _ := json.Marshal([]storage.Step{
		{Name: "01-navigate", URL: "https://user:hunter2@www.shop.test/?k=s3cr3t-token", Result: "success", Start: t0, Duration: 0.5, StatusCode: 200,
			Navigation: &storage.Navigation{TTFB: 0.05, DOMContentLoaded: 0.3, Load: 0.45, LCP: 0.4}},
		{Name: "02-click", Result: "error", Reason: "waiting for #add-to-cart: <script>alert(1)</script>", Start: t0.Add(500 * time.Millisecond), Duration: 1},
	})
	reqs, _ := json.Marshal([]storage.Request{
		{URL: "https://www.shop.test/", Domain: "www.shop.test", Method: "GET", Status: 200, Result: "ok", Start: t0, Duration: 0.05, Type: "document"},
		{URL: "https://static.shop-cdn.test/app.js", Domain: "static.shop-cdn.test", Method: "GET", Result: "failed",
			Failure: "net::ERR_CONNECTION_REFUSED", Start: t0.Add(60 * time.Millisecond), Duration: 0.002, Type: "script"},
		{URL: "https://static.shop-cdn.test/logo.png", Domain: "static.shop-cdn.test", Method: "GET", Status: 503, Result: "http_error",
			Start: t0.Add(70 * time.Millisecond), Duration: 0.03, Type: "image"},
	})
	id, err := e.store.RecordRun(t.Context(), storage.Run{TargetKey: "web-checkout/direct/lb1", Check: "web-checkout", Path: "direct", Node: "lb1",
		Start: t0, Duration: 1500 * time.Millisecond, Result: "error", Reason: "step 02-click: waiting for #add-to-cart: context deadline exceeded",
		Steps: steps, Requests: reqs, Artifacts: []string{"artifacts/run-1.png"}})
	if err != nil {
		t.Fatal(err)
	}
	code, ctype, body := e.get(t, fmt.Sprintf("/runs/%d", id))
	if code != 200 || ctype != "text/html; charset=utf-8" {
		t.Fatalf("%d %s %s", code, ctype, body)
	}
	assertNoSecrets(t, "run page", body)
	page := string(body)
	for _, want := range []string{
		"Run 1: web-checkout", "node lb1", `role="alert"`, "context deadline exceeded",
		"&lt;script&gt;alert(1)&lt;/script&gt;", // escaped, never executed
		"TTFB 50.0ms", "static.shop-cdn.test", "net::ERR_CONNECTION_REFUSED", ">503<", `class="fail" x="600" y="1" width="20"`,
		`<img class="shot" src="/api/v1/runs/1/screenshot.png" alt="Screenshot of web-checkout via direct on node lb1 at the end of failed run 1">`,
		"https://www.shop.test/?k=&lt;secret&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	for path, want := range map[string]int{"/runs/999": 404, "/runs/x": 400, "/runs/0": 400} {
		if code, _, _ := e.get(t, path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}

// thousand builds 1,000 targets' worth of source data: 250 checks over two
// paths, most with three nodes, a tenth of them in trouble.
func thousand() *fixedSource {
	src := &fixedSource{}
	n := 0
	for c := 0; n < 1000; c++ {
		name := fmt.Sprintf("check-%03d", c)
		nodes := []string{"lb1", "lb2", "lb3"}
		if c%4 == 3 {
			nodes = []string{""}
		}
		for _, p := range []string{"direct", "alt-source"} {
			for _, node := range nodes {
				if n == 1000 {
					break
				}
				state, result := web.StateUp, "success"
				if n%10 == 7 {
					state, result = web.StateDown, "error"
				}
				ct := target(name, "http", p, node, state, result, 0.01+float64(n%50)/1000)
				ct.Labels["route"] = fmt.Sprintf("r%d", c%17)
				ct.LastReason = "connection refused"
				if state == web.StateDown {
					ct.LastFailedRunID = int64(n)
				}
				if node != "" {
					ct.NodeSlowdown = fp(1 + float64(n%5))
				}
				src.checks = append(src.checks, ct)
				if c%25 == 0 && node == "lb1" {
					src.domains = append(src.domains, web.DomainStatus{Target: ct.Target, Check: name, Path: p, Node: node,
						Domain: fmt.Sprintf("cdn%d.example", c%3), Window: win(time.Minute, 20, 15, 0.1)})
				}
				n++
			}
		}
	}
	for i := range 40 {
		src.alerts = append(src.alerts, web.AlertStatus{Name: "ShopSlowForCustomers", Key: fmt.Sprintf("a%d", i), State: "firing",
			Labels: map[string]string{"alertname": "ShopSlowForCustomers", "check": "c"}, FiredCount: i % 4, Flapping: i%4 >= 2,
			ActiveAt: t0, FiredAt: t0})
	}
	for i := range 25 {
		src.events = append(src.events, storage.Event{ID: int64(i), Time: t0.Add(time.Duration(i) * time.Second), Kind: storage.TargetDown,
			Check: "check-001", Path: "direct", Node: "lb2", Detail: "connection refused", RunID: int64(i)})
	}
	return src
}

// TestStatusPage1000Targets renders a page of 1,000 targets. How fast is
// BenchmarkStatusPage1000Targets' to say (make bench): a loaded machine
// must not decide a test.
func TestStatusPage1000Targets(t *testing.T) {
	e := newStatusEnv(t, thousand(), true)
	var b bytes.Buffer
	start := time.Now()
	if err := e.st.Render(t.Context(), &b, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("1,000 targets: %v for the first render, %d bytes", time.Since(start), b.Len())
	if got := strings.Count(b.String(), `data-target="`); got != 1000 {
		t.Fatalf("%d cells rendered, want 1000", got)
	}
}

func BenchmarkStatusPage1000Targets(b *testing.B) {
	e := newStatusEnv(b, thousand(), true)
	var buf bytes.Buffer
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		buf.Reset()
		if err := e.st.Render(ctx, &buf, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/render")
	b.SetBytes(int64(buf.Len()))
}
