package browser

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/dnsprobe"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
	"github.com/vantage-monitoring/vantage/probe/tcpprobe"
	"github.com/vantage-monitoring/vantage/storage"
)

// fixture is one demo shop and one Prober shared by the tests (starting
// Chromium per test would dominate the run time).
type fixture struct {
	shop    *demo.Shop
	prober  *Prober
	storage string
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func needChromium(tb testing.TB) {
	tb.Helper()
	testenv.Binary(tb, DefaultExecPath, "chromium")
}

func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	needChromium(tb)
	fixOnce.Do(func() {
		shop, err := demo.Start(context.Background(), demo.Options{})
		if err != nil {
			fixErr = err
			return
		}
		dir, err := os.MkdirTemp("", "vantage-browser-test-")
		if err != nil {
			fixErr = err
			return
		}
		fix = &fixture{shop: shop, storage: dir,
			prober: New(Options{StorageDir: dir, Logger: zerolog.Nop(), KeepArtifacts: 3})}
	})
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return fix
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		_ = fix.prober.Close()
		_ = fix.shop.Close()
		_ = os.RemoveAll(fix.storage)
	}
	os.Exit(code)
}

// targets loads the shop's config with extra checks appended and expands
// the targets of check name.
func (f *fixture) targets(t *testing.T, extra, name string) []*probe.Target {
	t.Helper()
	return f.targetsWithPaths(t, f.shop.ConfigWithOptions(demo.ConfigOptions{Browser: true, NoAlerts: true, NoAltPath: true})+extra, name)
}

func (f *fixture) targetsWithPaths(t *testing.T, yaml, name string) []*probe.Target {
	t.Helper()
	cfg, err := checks.NewRegistry(httpprobe.Kind{}, Kind{}, tcpprobe.Kind{}, dnsprobe.Kind{}).Parse([]byte(yaml), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	paths := map[string]*netpath.Path{}
	for _, pc := range cfg.Paths {
		p, err := netpath.New(pc)
		if err != nil {
			t.Fatal(err)
		}
		paths[pc.Name] = p
	}
	ts := probe.ExpandTargets(context.Background(), cfg, paths, func(n string) bool { return n == name })
	if len(ts) == 0 {
		t.Fatalf("no targets for %s", name)
	}
	return ts
}

func runTarget(p *Prober, tg *probe.Target) probe.Outcome {
	return probe.RunOnce(context.Background(), p, tg)
}

// runWithin is runTarget that fails tb when the run has not ended within
// hang, a bound far beyond any check's timeout that only catches hangs.
func runWithin(tb testing.TB, hang time.Duration, p *Prober, tg *probe.Target) probe.Outcome {
	tb.Helper()
	done := make(chan probe.Outcome, 1)
	go func() { done <- runTarget(p, tg) }()
	select {
	case out := <-done:
		return out
	case <-time.After(hang):
		tb.Fatalf("run of %s did not end within %s", tg.Key, hang)
		return probe.Outcome{}
	}
}

func domainResults(reqs []probe.Request) map[string]map[string]int {
	m := map[string]map[string]int{}
	for _, r := range reqs {
		if m[r.Domain] == nil {
			m[r.Domain] = map[string]int{}
		}
		m[r.Domain][r.Result]++
	}
	return m
}

func describe(o probe.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "result=%s reason=%q duration=%s\n", o.Result, o.Reason, o.Duration)
	for _, s := range o.Steps {
		fmt.Fprintf(&b, "  step %s %s %s %q nav=%+v\n", s.Name, s.Result, s.Duration, s.Reason, s.Navigation)
	}
	for _, r := range o.Requests {
		fmt.Fprintf(&b, "  req %s %s %d %s %q %s\n", r.Method, r.URL, r.Status, r.Result, r.Failure, r.Duration)
	}
	b.WriteString(o.Detail)
	return b.String()
}

func TestJourneyAllNodes(t *testing.T) {
	f := getFixture(t)
	ts := f.targets(t, "", "web-checkout")
	if len(ts) != 3 {
		t.Fatalf("want 3 targets (one per node), got %d", len(ts))
	}
	for _, tg := range ts {
		out := runTarget(f.prober, tg)
		if out.Result != probe.Success {
			t.Fatalf("%s: %s", tg.Key, describe(out))
		}
		if len(out.Steps) != 7 {
			t.Fatalf("%s: want 7 steps, got %d", tg.Key, len(out.Steps))
		}
		if out.Steps[0].Name != "01-navigate" || out.Steps[0].Navigation == nil || out.Steps[0].Navigation.Load <= 0 {
			t.Errorf("%s: first step %+v: want 01-navigate with navigation timings", tg.Key, out.Steps[0])
		} else if nav := out.Steps[0].Navigation; nav.LCP <= 0 || nav.LCP > time.Minute {
			// The product page has a heading and an image: it has a
			// largest contentful paint, reported some frames after load.
			t.Errorf("%s: LCP %s, want the product page's paint", tg.Key, nav.LCP)
		}
		if out.Steps[0].StatusCode != 200 {
			t.Errorf("%s: navigate status %d", tg.Key, out.Steps[0].StatusCode)
		}
		dr := domainResults(out.Requests)
		if dr[demo.WWWHost][ResultOK] == 0 || dr[demo.StaticHost][ResultOK] < 3 {
			t.Errorf("%s: per-domain results %v\n%s", tg.Key, dr, describe(out))
		}
		for _, r := range out.Requests {
			if strings.Contains(r.URL, "lego") {
				t.Errorf("query string leaked into request URL %q", r.URL)
			}
		}
		// Every connection to www.shop.test went to the pinned node, and
		// only there.
		node := tg.Node.Addr.String()
		if !strings.Contains(out.Detail, demo.WWWHost+" -> "+node+":") {
			t.Errorf("%s: www not pinned to %s:\n%s", tg.Key, node, out.Detail)
		}
		for _, other := range f.shop.Nodes() {
			if other.IP.String() != node && strings.Contains(out.Detail, other.IP.String()+":") {
				t.Errorf("%s: connection to other node %s:\n%s", tg.Key, other.IP, out.Detail)
			}
		}
	}
}

// oneTarget is the target of check name on node lb1 (or the only one).
func (f *fixture) oneTarget(t *testing.T, extra, name string) *probe.Target {
	t.Helper()
	ts := f.targets(t, extra, name)
	return ts[0]
}

func TestFailingSelectorNamesStepAndSelector(t *testing.T) {
	f := getFixture(t)
	extra := fmt.Sprintf(`
  - name: missing-button
    type: browser
    interval: 1m
    timeout: 10s
    steps:
      - navigate: %s
      - name: press-it
        click: "#no-such-button"
        timeout: 1s
    screenshot: on_failure
`, f.shop.URL(demo.WWWHost, "/product/123"))
	out := runTarget(f.prober, f.oneTarget(t, extra, "missing-button"))
	if out.Result != probe.Failure {
		t.Fatalf("want failure: %s", describe(out))
	}
	if !strings.Contains(out.Reason, `"press-it"`) || !strings.Contains(out.Reason, "#no-such-button") {
		t.Fatalf("reason %q must name the step and the selector", out.Reason)
	}
	if len(out.Artifacts) != 2 || !strings.HasSuffix(out.Artifacts[0], ".png") || !strings.HasSuffix(out.Artifacts[1], ".json") {
		t.Fatalf("artifacts %v: want a PNG and a JSON", out.Artifacts)
	}
	for _, a := range out.Artifacts {
		if st, err := os.Stat(a); err != nil || st.Size() == 0 {
			t.Fatalf("artifact %s: %v", a, err)
		}
	}
	// Stored as the daemon stores runs, the files are the run's own: the
	// storage serves them (it serves a run nothing else).
	tg := f.oneTarget(t, extra, "missing-button")
	st, err := storage.Open(f.storage, storage.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	st.Sink().Observe(&probe.Observation{Target: tg, Outcome: &out})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = storage.Open(f.storage, storage.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.RecentRuns(t.Context(), tg.Key, 1)
	if err != nil || len(runs) != 1 || len(runs[0].Artifacts) != 2 {
		t.Fatalf("stored run: %+v %v", runs, err)
	}
	for i := range runs[0].Artifacts {
		file, _, err := st.OpenArtifact(runs[0], i)
		if err != nil {
			t.Fatalf("the run's own artifact %s is refused: %v", runs[0].Artifacts[i], err)
		}
		file.Close()
	}
}

func TestStaticDomainFaults(t *testing.T) {
	f := getFixture(t)
	extra := fmt.Sprintf(`
  - name: product-page
    type: browser
    timeout: 8s
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}]}
    steps:
      - navigate: %s
        timeout: 3s
      - wait_visible: "h1"
`, f.shop.URL(demo.WWWHost, "/product/123"))
	tg := f.oneTarget(t, extra, "product-page")
	defer f.shop.ClearAll()
	cases := []struct {
		name      string
		fault     demo.Fault
		want      string // result of static requests
		status    int
		mustPass  bool
		wantInErr string
	}{
		{"refuse", demo.Fault{Refuse: true}, ResultFailed, 0, true, demo.StaticHost + ": connection refused ("},
		{"reset", demo.Fault{Reset: true}, ResultFailed, 0, true, demo.StaticHost + ": connection reset ("},
		{"503", demo.Fault{ErrorRatio: 1}, ResultHTTPError, 503, true, "HTTP 503"},
		{"stall", demo.Fault{Stall: true}, ResultFailed, 0, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.shop.SetFault(demo.StaticHost, tc.fault); err != nil {
				t.Fatal(err)
			}
			out := runTarget(f.prober, tg)
			if tc.mustPass && out.Result != probe.Success {
				t.Fatalf("main journey should pass: %s", describe(out))
			}
			var static, www int
			for _, r := range out.Requests {
				switch r.Domain {
				case demo.StaticHost:
					static++
					if r.Result != tc.want || r.Status != tc.status {
						t.Errorf("static request %s: result %s status %d, want %s %d", r.URL, r.Result, r.Status, tc.want, tc.status)
					}
					if tc.wantInErr != "" && !strings.Contains(r.Failure, tc.wantInErr) {
						t.Errorf("failure %q should mention %s", r.Failure, tc.wantInErr)
					}
					// What the domain did, never the proxy's own failure.
					if strings.Contains(r.Failure, "TUNNEL") || strings.Contains(r.Failure, "502") {
						t.Errorf("failure %q reads as the proxy's", r.Failure)
					}
				case demo.WWWHost:
					www++
					if r.Result != ResultOK {
						t.Errorf("www request %s: %s", r.URL, r.Result)
					}
				}
			}
			if static == 0 || www == 0 {
				t.Fatalf("want requests to both domains: %s", describe(out))
			}
		})
	}
}

func TestBrowserKilledMidRun(t *testing.T) {
	f := getFixture(t)
	// The page tells the test when the journey has reached it, so the
	// browser is killed mid-run however long opening the tab took.
	served := make(chan struct{})
	var once sync.Once
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/product" {
			once.Do(func() { close(served) })
		}
		_, _ = io.WriteString(w, `<html><body><button id="add-to-cart">add</button></body></html>`)
	}))
	defer page.Close()
	extra := fmt.Sprintf(`
  - name: slow-journey
    type: browser
    interval: 1m
    timeout: 15s
    steps:
      - navigate: %s/product
      - sleep: 4s
      - wait_visible: "#add-to-cart"
`, page.URL)
	tg := f.oneTarget(t, extra, "slow-journey")
	// Make sure the browser runs, then kill it while the journey sleeps.
	if out := runTarget(f.prober, f.targets(t, "", "web-checkout")[0]); out.Result != probe.Success {
		t.Fatalf("warm-up: %s", describe(out))
	}
	pid := f.prober.BrowserPID()
	restarts := f.prober.Restarts()
	done := make(chan probe.Outcome, 1)
	go func() { done <- runTarget(f.prober, tg) }()
	select {
	case <-served:
	case out := <-done:
		t.Fatalf("journey ended before reaching its page: %s", describe(out))
	case <-time.After(2 * time.Minute):
		t.Fatal("journey did not reach its page within 2m")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out := <-done
	if out.Result != probe.Error || !strings.Contains(out.Reason, "crash") {
		t.Fatalf("run with a killed browser: want error naming the crash: %s", describe(out))
	}
	out = runTarget(f.prober, f.targets(t, "", "web-checkout")[1])
	if out.Result != probe.Success {
		t.Fatalf("next run after restart: %s", describe(out))
	}
	if f.prober.BrowserPID() == pid || f.prober.Restarts() <= restarts {
		t.Fatalf("browser not restarted: pid %d -> %d, restarts %d -> %d", pid, f.prober.BrowserPID(), restarts, f.prober.Restarts())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("old browser %d still exists (zombie?)", pid)
	}
}

// connectProxy is a minimal upstream HTTP CONNECT proxy that logs targets.
type connectProxy struct {
	ln    net.Listener
	hosts map[string]string // name -> IP (the proxy resolves, as real ones do)
	mu    sync.Mutex
	log   []string
}

func startConnectProxy(t *testing.T, hosts map[string]string) *connectProxy {
	cp := &connectProxy{ln: testenv.Listen(t, ""), hosts: hosts}
	testenv.ServeConns(t, cp.ln, cp.serve)
	return cp
}

func (cp *connectProxy) serve(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	cp.mu.Lock()
	cp.log = append(cp.log, req.Host)
	cp.mu.Unlock()
	host, port, _ := net.SplitHostPort(req.Host)
	if ip, ok := cp.hosts[host]; ok {
		host = ip
	}
	up, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 3*time.Second)
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
	go func() { _, _ = io.Copy(up, br); _ = up.Close() }()
	_, _ = io.Copy(c, up)
}

func (cp *connectProxy) seen() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return strings.Join(cp.log, " ")
}

func TestPathThroughProxy(t *testing.T) {
	f := getFixture(t)
	cp := startConnectProxy(t, map[string]string{demo.StaticHost: f.shop.StaticIP().String()})
	yaml := fmt.Sprintf(`
paths:
  - name: via-proxy
    proxy: http://%s
    tls: {ca_file: %s}
checks:
  - name: proxied
    type: browser
    timeout: 10s
    nodes: {addresses: [{name: lb3, address: 127.0.0.13}]}
    steps:
      - navigate: %s
      - click: "#add-to-cart"
      - assert_text: {selector: "#cart-count", contains: "1"}
`, cp.ln.Addr(), f.shop.CAFile(), f.shop.URL(demo.WWWHost, "/product/123"))
	tg := f.targetsWithPaths(t, yaml, "proxied")[0]
	out := runTarget(f.prober, tg)
	if out.Result != probe.Success {
		t.Fatalf("%s", describe(out))
	}
	seen := cp.seen()
	if !strings.Contains(seen, "127.0.0.13:") || !strings.Contains(seen, demo.StaticHost+":") {
		t.Fatalf("proxy log %q: want the pinned node and the static domain", seen)
	}
}

func TestBadInput(t *testing.T) {
	f := getFixture(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body><h1 id=ok>partial</h1>")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/alert", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `<html><body><script>alert("hello"); confirm("sure?");</script><h1 id=ok>after dialogs</h1></body></html>`)
	})
	mux.HandleFunc("/popup", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `<html><body><script>window.open("/alert")</script><a id=pop href="/alert" target="_blank">pop</a><h1 id=ok>popups</h1></body></html>`)
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="x.bin"`)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, "data")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cases := []struct {
		name   string
		steps  string
		want   probe.Result
		reason string
	}{
		{"never-loads", "      - navigate: " + srv.URL + "/hang\n", probe.Timeout, "did not finish loading"},
		{"redirect-loop", "      - navigate: " + srv.URL + "/loop\n", probe.Error, "ERR_TOO_MANY_REDIRECTS"},
		{"never-appears", "      - navigate: " + srv.URL + "/alert\n      - wait_visible: \"#nothing\"\n", probe.Timeout, "#nothing"},
		{"dialogs", "      - navigate: " + srv.URL + "/alert\n      - assert_text: {selector: \"#ok\", contains: \"after\"}\n", probe.Success, ""},
		{"popups", "      - navigate: " + srv.URL + "/popup\n      - click: \"#pop\"\n      - wait_visible: \"#ok\"\n", probe.Success, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extra := fmt.Sprintf("\n  - name: bad-%s\n    type: browser\n    timeout: 3s\n    screenshot: never\n    steps:\n%s", tc.name, tc.steps)
			// The 3s timeout is the journey's (opening the tab is bounded
			// apart from it); the result says whether it was applied, and
			// the deadline here only catches a run that never ends.
			out := runWithin(t, 2*time.Minute, f.prober, f.oneTarget(t, extra, "bad-"+tc.name))
			if out.Result != tc.want || !strings.Contains(out.Reason, tc.reason) {
				t.Fatalf("want %s with %q: %s", tc.want, tc.reason, describe(out))
			}
			if tc.want == probe.Timeout && !strings.Contains(out.Reason, "within") {
				t.Fatalf("a timeout names the time it waited: %s", describe(out))
			}
			// The next run starts clean.
			if next := runTarget(f.prober, f.targets(t, "", "web-checkout")[0]); next.Result != probe.Success {
				t.Fatalf("next run: %s", describe(next))
			}
		})
	}
}

func TestMissingChromium(t *testing.T) {
	p := New(Options{ExecPath: "/nonexistent/chromium", Logger: zerolog.Nop()})
	defer p.Close()
	if ok, why := p.Ready(); ok || !strings.Contains(why, "not found") {
		t.Fatalf("Ready() = %v, %q", ok, why)
	}
	f := getFixture(t)
	out := runTarget(p, f.targets(t, "", "web-checkout")[0])
	if out.Result != probe.Error || !strings.Contains(out.Reason, "/nonexistent/chromium") {
		t.Fatalf("want error naming the binary: %s", describe(out))
	}
}

func TestBlockDomains(t *testing.T) {
	f := getFixture(t)
	extra := fmt.Sprintf(`
  - name: blocked-cdn
    type: browser
    timeout: 8s
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}]}
    block_domains: ["*.shop-cdn.test"]
    steps:
      - navigate: %s
        timeout: 3s
      - wait_visible: "h1"
`, f.shop.URL(demo.WWWHost, "/product/123"))
	out := runTarget(f.prober, f.oneTarget(t, extra, "blocked-cdn"))
	if out.Result != probe.Success {
		t.Fatalf("the page itself should load: %s", describe(out))
	}
	res := domainResults(out.Requests)
	if res[demo.StaticHost][ResultBlocked] == 0 {
		t.Fatalf("requests to the blocked CDN domain should be %q: %v", ResultBlocked, res)
	}
	for r, n := range res[demo.StaticHost] {
		if r != ResultBlocked && n > 0 {
			t.Errorf("%d CDN requests are %q, want all blocked: %v", n, r, res)
		}
	}
	if res[demo.WWWHost][ResultOK] == 0 {
		t.Fatalf("the shop's own requests should be ok: %v", res)
	}
}

// TestPlainHTTPUpstreamFailures: plain-HTTP requests go through the proxy
// as absolute-form requests, not tunnels. A domain that refuses or resets
// is a failed request naming what the domain did, not an http_error with
// the proxy's own 502; a navigation to it fails with the same reason; a
// real 503 of the domain stays an http_error.
func TestPlainHTTPUpstreamFailures(t *testing.T) {
	f := getFixture(t)
	defer f.shop.ClearAll()
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body><h1 id=ok>page</h1><script src="%s"></script></body></html>`,
			f.shop.HTTPURL(demo.StaticHost, "/app.js"))
	}))
	defer page.Close()
	extra := fmt.Sprintf(`
  - name: plain-sub
    type: browser
    timeout: 8s
    screenshot: never
    steps:
      - navigate: %s/
      - wait_visible: "#ok"
  - name: plain-nav
    type: browser
    timeout: 8s
    screenshot: never
    steps:
      - navigate: %s
`, page.URL, f.shop.HTTPURL(demo.StaticHost, "/app.js"))
	sub := f.oneTarget(t, extra, "plain-sub")
	nav := f.oneTarget(t, extra, "plain-nav")
	for _, tc := range []struct {
		name   string
		fault  demo.Fault
		result string
		status int
		reason string
	}{
		{"refuse", demo.Fault{Refuse: true}, ResultFailed, 0, demo.StaticHost + ": connection refused ("},
		{"reset", demo.Fault{Reset: true}, ResultFailed, 0, demo.StaticHost + ": connection "},
		{"503", demo.Fault{ErrorRatio: 1}, ResultHTTPError, 503, "HTTP 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.shop.SetFault(demo.StaticHost, tc.fault); err != nil {
				t.Fatal(err)
			}
			out := runWithin(t, 2*time.Minute, f.prober, sub)
			if out.Result != probe.Success {
				t.Fatalf("the page itself should load: %s", describe(out))
			}
			n := 0
			for _, r := range out.Requests {
				if r.Domain != demo.StaticHost {
					continue
				}
				n++
				if r.Result != tc.result || r.Status != tc.status || !strings.Contains(r.Failure, tc.reason) {
					t.Errorf("static request %s: result %s status %d failure %q, want %s %d %q", r.URL, r.Result, r.Status, r.Failure, tc.result, tc.status, tc.reason)
				}
				if strings.Contains(r.Failure, "502") || strings.Contains(r.Failure, "vantage proxy") {
					t.Errorf("failure %q reads as the proxy's", r.Failure)
				}
			}
			if n == 0 {
				t.Fatalf("no request to %s: %s", demo.StaticHost, describe(out))
			}
			if tc.result != ResultFailed {
				return
			}
			out = runWithin(t, 2*time.Minute, f.prober, nav)
			if out.Result == probe.Success || !strings.Contains(out.Reason, tc.reason) || strings.Contains(out.Reason, "502") {
				t.Errorf("navigation to a domain that fails: want a reason with %q: %s", tc.reason, describe(out))
			}
		})
	}
}

// TestAssertTextFailureIsFailure: an assert_text whose element is there
// with other text is a failed assertion, not a timeout, even when the
// check's timeout (not a step's own) ends the wait.
func TestAssertTextFailureIsFailure(t *testing.T) {
	f := getFixture(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `<html><body><span id="cart-count">0</span></body></html>`)
	}))
	defer page.Close()
	extra := fmt.Sprintf(`
  - name: wrong-text
    type: browser
    timeout: 3s
    screenshot: never
    steps:
      - navigate: %s/
      - assert_text: {selector: "#cart-count", contains: "1"}
`, page.URL)
	out := runWithin(t, 2*time.Minute, f.prober, f.oneTarget(t, extra, "wrong-text"))
	if out.Result != probe.Failure || !strings.Contains(out.Reason, `text of "#cart-count" is "0", want it to contain "1"`) {
		t.Fatalf("want failure naming the text seen: %s", describe(out))
	}
}

// TestUntrustedCertificateIsTLSError: a sub-resource from a server whose
// certificate the path's CA does not vouch for fails as a TLS error of
// that domain, not as the proxy's tunnel failure.
func TestUntrustedCertificateIsTLSError(t *testing.T) {
	f := getFixture(t)
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		_, _ = io.WriteString(w, "window.x = 1;")
	}))
	defer untrusted.Close()
	// The page is on 127.0.0.2, the script's server on 127.0.0.1: two
	// domains, so the request list keeps them apart.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<html><body><h1 id=ok>page</h1><script src="%s/x.js"></script></body></html>`, untrusted.URL)
	})}}
	page.Start()
	defer page.Close()
	extra := fmt.Sprintf(`
  - name: untrusted-sub
    type: browser
    timeout: 8s
    screenshot: never
    steps:
      - navigate: %s/
      - wait_visible: "#ok"
`, page.URL)
	out := runWithin(t, 2*time.Minute, f.prober, f.oneTarget(t, extra, "untrusted-sub"))
	if out.Result != probe.Success {
		t.Fatalf("the page itself should load: %s", describe(out))
	}
	n := 0
	for _, r := range out.Requests {
		if r.Domain != "127.0.0.1" {
			continue
		}
		n++
		if r.Result != ResultFailed || !strings.Contains(r.Failure, "127.0.0.1: TLS error (") || strings.Contains(r.Failure, "TUNNEL") {
			t.Errorf("request %s: result %s failure %q, want failed with the TLS error", r.URL, r.Result, r.Failure)
		}
	}
	if n == 0 {
		t.Fatalf("no request to the untrusted server: %s", describe(out))
	}
}

// TestRunEndsWithItsContext: a run whose caller gives up (the daemon
// stopping) ends then, not at the journey's deadline: the tab's context
// descends from the browser's and must follow the run's.
func TestRunEndsWithItsContext(t *testing.T) {
	f := getFixture(t)
	served := make(chan struct{})
	var once sync.Once
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(served) })
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body><h1>never finishes</h1>")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer page.Close()
	extra := fmt.Sprintf(`
  - name: endless
    type: browser
    interval: 5m
    timeout: 4m
    screenshot: never
    steps:
      - navigate: %s/
`, page.URL)
	tg := f.oneTarget(t, extra, "endless")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan probe.Outcome, 1)
	go func() { done <- probe.RunOnce(ctx, f.prober, tg) }()
	select {
	case <-served:
	case out := <-done:
		t.Fatalf("run ended before its page was requested: %s", describe(out))
	case <-time.After(2 * time.Minute):
		t.Fatal("the page was not requested within 2m")
	}
	cancel()
	// The journey's own timeout is 4 minutes; ending at all well before it
	// shows the cancellation reached the tab.
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not end within 2m of its context's cancellation (it waits for its 4m timeout)")
	}
	// The next run starts clean.
	if next := runTarget(f.prober, f.targets(t, "", "web-checkout")[0]); next.Result != probe.Success {
		t.Fatalf("next run: %s", describe(next))
	}
}
