package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/web"
)

const chromiumPath = "/usr/bin/chromium"

// outDir is where screenshots go (gitignored), for people to look at; the
// tests check what can be checked without a golden image (checkShot,
// colourAt).
const outDir = "testdata/out"

// newBrowser starts a headless Chromium for t, or skips without one
// (fails on CI, where it must be installed).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	testenv.Binary(t, chromiumPath, "chromium")
	// A fresh profile, and temporary files of this browser's own.
	dir := t.TempDir()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Env("TMPDIR="+dir, "HOME="+dir),
		chromedp.WindowSize(1366, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// run is chromedp.Run bounded by d.
func run[T any](t *testing.T, ctx context.Context, d time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// saveShot stores the whole page, or with viewport only what is on screen,
// and returns it decoded, failing t unless it is a PNG.
func saveShot(t *testing.T, ctx context.Context, name string, viewport bool) image.Image {
	t.Helper()
	shot := chromedp.FullScreenshot(100)
	if viewport {
		shot = chromedp.CaptureScreenshot()
	}
	data := run(t, ctx, 20*time.Second, "screenshot "+name, shot)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(outDir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(p)
	t.Logf("screenshot: %s", abs)
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	return img
}

// shotStride samples every 3rd pixel each way: enough to see a page's
// colours, and cheap under the race detector.
const shotStride = 3

// colours counts the colours of img's pixels inside r, sampled.
func colours(img image.Image, r image.Rectangle) map[color.RGBA]int {
	out := map[color.RGBA]int{}
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y += shotStride {
		for x := r.Min.X; x < r.Max.X; x += shotStride {
			out[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	return out
}

// dominant is the most frequent colour and its share of the samples.
func dominant(hist map[color.RGBA]int) (color.RGBA, float64) {
	var best color.RGBA
	n, total := 0, 0
	for c, k := range hist {
		total += k
		if k > n || k == n && fmt.Sprint(c) < fmt.Sprint(best) {
			best, n = c, k
		}
	}
	if total == 0 {
		return best, 0
	}
	return best, float64(n) / float64(total)
}

// checkShot fails t unless img is width pixels wide, at least minHeight
// high, and not blank: no colour covers nearly all of it, and text's
// anti-aliasing gives it many colours.
func checkShot(t *testing.T, name string, img image.Image, width, minHeight int) {
	t.Helper()
	b := img.Bounds()
	if b.Dx() != width || b.Dy() < minHeight {
		t.Errorf("screenshot %s is %dx%d, want %d wide and at least %d high", name, b.Dx(), b.Dy(), width, minHeight)
	}
	hist := colours(img, b)
	if c, share := dominant(hist); share > 0.97 || len(hist) < 16 {
		t.Errorf("screenshot %s looks blank: %d colours, %v covers %.1f%%", name, len(hist), c, 100*share)
	}
}

// elementRect is where sel is on the page, in CSS pixels from the top of
// the document (a full-page screenshot's coordinates at scale 1).
func elementRect(t *testing.T, ctx context.Context, sel string) image.Rectangle {
	t.Helper()
	js := `(() => { const r = document.querySelector(` + strconv.Quote(sel) + `).getBoundingClientRect();
		return [r.left + window.scrollX, r.top + window.scrollY, r.right + window.scrollX, r.bottom + window.scrollY]; })()`
	v := run(t, ctx, 5*time.Second, "rect of "+sel, chromedp.Evaluate[[]float64](js))
	if len(v) != 4 || v[2] <= v[0] || v[3] <= v[1] {
		t.Fatalf("rect of %s: %v", sel, v)
	}
	// A pixel inside each edge: borders and anti-aliasing are not the cell.
	return image.Rect(int(v[0])+2, int(v[1])+2, int(v[2])-2, int(v[3])-2)
}

// colourAt is the dominant colour of img inside r.
func colourAt(img image.Image, r image.Rectangle) color.RGBA {
	c, _ := dominant(colours(img, r))
	return c
}

// differs is the share of sampled pixels in which a and b differ, over
// the area both cover.
func differs(a, b image.Image) float64 {
	r := a.Bounds().Intersect(b.Bounds())
	n, d := 0, 0
	for y := r.Min.Y; y < r.Max.Y; y += shotStride {
		for x := r.Min.X; x < r.Max.X; x += shotStride {
			n++
			if color.RGBAModel.Convert(a.At(x, y)) != color.RGBAModel.Convert(b.At(x, y)) {
				d++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(d) / float64(n)
}

// getJSON polls an API endpoint until ok accepts its data.
func waitAPI[T any](t *testing.T, url string, d time.Duration, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(d)
	var last T
	for time.Now().Before(deadline) {
		var doc struct {
			Status string
			Data   T
		}
		resp, err := http.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
		}
		if err == nil && doc.Status == "success" {
			last = doc.Data
			if ok(doc.Data) {
				return doc.Data
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: condition not met within %v; last: %+v", url, d, last)
	return last
}

// TestStatusPageInBrowser drives the page in Chromium against a daemon
// watching the demo shop with node lb2 refusing connections.
func TestStatusPageInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	shop, err := demo.Start(t.Context(), demo.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shop.Close() })

	// The demo config with a quick alert rule: the demo's own rules wait
	// 30s, too long for a test.
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: time.Second, Timeout: 900 * time.Millisecond, NoAlerts: true}) + `
alerts:
  - name: ShopNodeFailing
    checks: ["shop-*"]
    when: success_ratio < 0.8
    window: 1m
    for: 1s
    severity: page
    annotations:
      summary: "{{ .check }} fails via {{ .path }} on node {{ .node }}"
`
	// The fault goes in as a user puts it: over the shop's control endpoint.
	putFault(t, shop, "lb2", `{"refuse":true}`)
	base := startDemoDaemon(t, log, cfg, 300*time.Millisecond)

	// Wait for what the page must show: lb2 DOWN with a stored failed run,
	// and the alert firing.
	// The demo config's node_names label resolved nodes by name.
	lb1, lb2 := "lb1", "lb2"
	bad := "shop-home/direct/" + lb2
	var failedRun int64
	waitAPI(t, base+"/api/v1/checks", 20*time.Second, func(d struct{ Checks []web.CheckStatus }) bool {
		for _, c := range d.Checks {
			if c.Target == bad {
				failedRun = c.LastFailedRunID
				return c.State == web.StateDown && c.LastFailedRunID > 0
			}
		}
		return false
	})
	if failedRun <= 0 {
		t.Fatal("no failed run linked")
	}
	waitAPI(t, base+"/api/v1/alerts", 20*time.Second, func(d struct{ Alerts []web.AlertStatus }) bool {
		for _, a := range d.Alerts {
			if a.Name == "ShopNodeFailing" && a.State == "firing" && a.Labels["node"] == lb2 {
				return true
			}
		}
		return false
	})

	cellSel := chromedp.CSS(`td[data-target="` + bad + `"]`)
	do(t, bctx, 15*time.Second, "loading the status page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(cellSel))
	state := run(t, bctx, 5*time.Second, "cell state", chromedp.AttributeValue(cellSel, "data-state"))
	text := run(t, bctx, 5*time.Second, "cell text", chromedp.Text(cellSel))
	if state.Value != "down" || !strings.Contains(text, "DOWN") {
		t.Errorf("lb2 cell: state %q, text %q", state.Value, text)
	}
	healthy := run(t, bctx, 5*time.Second, "sibling", chromedp.AttributeValue(chromedp.CSS(`td[data-target="shop-home/direct/`+lb1+`"]`), "data-state"))
	// A loaded machine can time out one healthy run ("failing" until the
	// next); the page must still not show the sibling as down.
	if healthy.Value != "up" && healthy.Value != "failing" {
		t.Errorf("lb1 sibling: %q", healthy.Value)
	}
	alerts := run(t, bctx, 5*time.Second, "alerts panel", chromedp.Text(chromedp.CSS(`section[aria-labelledby="alerts-h"]`)))
	if !strings.Contains(alerts, "ShopNodeFailing") || !strings.Contains(strings.ToUpper(alerts), "FIRING") || !strings.Contains(alerts, "node="+lb2) {
		t.Errorf("alerts panel: %q", alerts)
	}
	events := run(t, bctx, 5*time.Second, "events panel", chromedp.Text(chromedp.CSS(`section[aria-labelledby="events-h"]`)))
	if !strings.Contains(events, "target down") {
		t.Errorf("events panel: %q", events)
	}
	// What the screenshot shows: the page, not a blank; lb2's DOWN cell in
	// another colour than its healthy sibling's and the page's.
	status := saveShot(t, bctx, "status.png", false)
	checkShot(t, "status.png", status, 1366, 600)
	downCell := colourAt(status, elementRect(t, bctx, `td[data-target="`+bad+`"]`))
	upCell := colourAt(status, elementRect(t, bctx, `td[data-target="shop-home/direct/`+lb1+`"]`))
	page, _ := dominant(colours(status, status.Bounds()))
	t.Logf("status.png %v: down cell %v, healthy cell %v, page %v", status.Bounds().Size(), downCell, upCell, page)
	if downCell == upCell || downCell == page {
		t.Errorf("status.png: the down cell is %v, the healthy one %v, the page %v: the states look alike", downCell, upCell, page)
	}

	// What the person on call sees first at 1400×1000: lb2's line, and
	// the check grid with lb2's cell on screen.
	do(t, bctx, 10*time.Second, "on-call viewport", chromedp.EmulateViewport(1400, 1000), chromedp.Reload(), chromedp.WaitVisible(cellSel))
	seen := run(t, bctx, 10*time.Second, "measuring the page", chromedp.Evaluate[layout](layoutJS(bad)))
	if !strings.HasPrefix(seen.FirstIncident, "lb2 down since ") || !strings.Contains(seen.FirstIncident, "the other nodes answer") {
		t.Errorf("first line %q", seen.FirstIncident)
	}
	if seen.GridTop < 0 || seen.GridTop >= 1000 || seen.Cell.Top < 0 || seen.Cell.Bottom > 1000 {
		t.Errorf("lb2's cell is off screen at 1400×1000: grid top %.0f, cell %+v", seen.GridTop, seen.Cell)
	}
	saveShot(t, bctx, "status-daemon-lb2.png", true)

	// Phone width: the page must still be readable (no horizontal page
	// scroll beyond the viewport).
	do(t, bctx, 10*time.Second, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Reload(), chromedp.WaitVisible(cellSel))
	overflow := run(t, bctx, 5*time.Second, "page width", chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`))
	if overflow > 1 {
		t.Errorf("page is %vpx wider than a phone screen", overflow)
	}
	phone := saveShot(t, bctx, "status-phone.png", true)
	checkShot(t, "status-phone.png", phone, 390*2, 844*2) // the viewport at scale 2
	do(t, bctx, 10*time.Second, "laptop viewport", chromedp.EmulateViewport(1366, 900), chromedp.Reload(), chromedp.WaitVisible(cellSel))

	// Follow the failing cell to its run.
	do(t, bctx, 15*time.Second, "opening the failed run",
		chromedp.Click(chromedp.CSS(`td[data-target="`+bad+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`.error-text`)))
	loc := run(t, bctx, 5*time.Second, "location", chromedp.Location())
	errText := run(t, bctx, 5*time.Second, "error", chromedp.Text(chromedp.CSS(`.error-text`)))
	heading := run(t, bctx, 5*time.Second, "heading", chromedp.Text(chromedp.CSS(`h1`)))
	// The page shows the stored run's error (the cell links the newest
	// failed run, which moves on while the fault lasts).
	id := loc[strings.LastIndex(loc, "/")+1:]
	stored := waitAPI(t, base+"/api/v1/runs/"+id, 5*time.Second, func(r web.RunJSON) bool { return r.Error != "" })
	if !strings.Contains(loc, "/runs/") || errText != stored.Error || !strings.Contains(heading, "shop-home") || !strings.Contains(heading, lb2) {
		t.Errorf("run page %s: heading %q, error %q", loc, heading, errText)
	}
	runShot := saveShot(t, bctx, "run.png", false)
	checkShot(t, "run.png", runShot, 1366, 300)
	diff := differs(status, runShot)
	t.Logf("run.png %v differs from status.png in %.1f%% of its pixels", runShot.Bounds().Size(), 100*diff)
	if diff < 0.02 {
		t.Errorf("run.png differs from status.png in %.1f%% of its pixels: the same page?", 100*diff)
	}
}

// putFault sets a fault over the demo shop's control endpoint, as the
// README's curl lines do.
func putFault(t *testing.T, shop *demo.Shop, target, body string) {
	t.Helper()
	req, err := http.NewRequest("PUT", shop.ControlURL()+"/faults/"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /faults/%s: %s", target, resp.Status)
	}
}

// startDemoDaemon runs a daemon with cfg on a loopback port until the test
// ends and returns its base URL.
func startDemoDaemon(t *testing.T, log zerolog.Logger, cfg string, eval time.Duration) string {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "vantage.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{
		ConfigFile: cfgFile, StoragePath: t.TempDir(), Logger: log, EvalInterval: eval,
		Kinds: kinds.Registry(), Probers: kinds.Probers(log, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = d.Run(ctx, l) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return "http://" + l.Addr().String()
}

// TestStatusPageSlowNodeInBrowser is the new user's evening in Chromium: the
// demo config and rules, lb2 slow on 30 % of its responses and the CDN
// refusing, both set over the control endpoint. At 1400×1000 the first
// line is lb2's, DEGRADED; lb2's cells are on screen in a colour of their
// own, not UP's green; the CDN's checks follow.
func TestStatusPageSlowNodeInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	shop, err := demo.Start(t.Context(), demo.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shop.Close() })
	// As in the daemon's node detector test: 1.5 s of injected latency and
	// min_excess 200ms keep the fault clear of a loaded machine's noise.
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: 2 * time.Second, Timeout: 1900 * time.Millisecond})
	cfg = strings.Replace(cfg, "global:\n", "global:\n  node_detection: {baseline: 3m, min_excess: 200ms}\n", 1)
	putFault(t, shop, "lb2", `{"latency":"1.5s","latency_ratio":0.3}`)
	putFault(t, shop, "static.shop-cdn.test", `{"refuse":true}`)
	base := startDemoDaemon(t, log, cfg, 500*time.Millisecond)

	waitAPI(t, base+"/api/v1/checks", 3*time.Minute, func(d struct{ Nodes []web.NodeStatus }) bool {
		for _, n := range d.Nodes {
			if n.Node == "lb2" {
				return n.State == web.NodeDegraded
			}
		}
		return false
	})
	do(t, bctx, 30*time.Second, "loading the status page",
		chromedp.EmulateViewport(1400, 1000), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#now")))
	var seen layout
	// The verdict can lapse between the API and the page on a loaded
	// machine; the page refreshes itself.
	deadline := time.Now().Add(time.Minute)
	for {
		seen = run(t, bctx, 10*time.Second, "measuring the page", chromedp.Evaluate[layout](layoutJS("shop-home/direct/lb2")))
		if strings.HasPrefix(seen.FirstIncident, "lb2 degraded since ") || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	saveShot(t, bctx, "status-daemon-slow-lb2.png", true)
	saveShot(t, bctx, "status-daemon-slow-lb2-full.png", false)
	t.Logf("%+v", seen)
	if !strings.HasPrefix(seen.FirstIncident, "lb2 degraded since ") || !strings.Contains(seen.FirstIncident, "of runs slow or failed") {
		t.Errorf("first line %q", seen.FirstIncident)
	}
	// On screen, not necessarily whole: a loaded machine adds incident
	// lines (healthy targets timing out) above the grid.
	if seen.GridTop < 0 || seen.GridTop >= 1000 || seen.FirstCard.Top > 900 {
		t.Errorf("the check grid is off screen at 1400×1000: grid top %.0f, first card %+v", seen.GridTop, seen.FirstCard)
	}
	if seen.DegradedBg == "" || seen.DegradedBg == seen.UpBg {
		t.Errorf("degraded cell background %q, up %q", seen.DegradedBg, seen.UpBg)
	}
	text := run(t, bctx, 5*time.Second, "incident lines", chromedp.Text(chromedp.CSS("#now")))
	if !strings.Contains(text, "cdn-static") || !strings.Contains(text, "cdn-app-js") {
		t.Errorf("no line for the CDN's checks: %q", text)
	}
}

// swapSource is a fixedSource that can be replaced while the page runs.
type swapSource struct {
	mu  sync.Mutex
	src *fixedSource
}

func (s *swapSource) get() *fixedSource  { s.mu.Lock(); defer s.mu.Unlock(); return s.src }
func (s *swapSource) set(f *fixedSource) { s.mu.Lock(); s.src = f; s.mu.Unlock() }
func (s *swapSource) Checks(ctx context.Context) []web.CheckStatus {
	return s.get().Checks(ctx)
}
func (s *swapSource) Domains(ctx context.Context) []web.DomainStatus { return s.get().Domains(ctx) }
func (s *swapSource) Alerts(ctx context.Context) []web.AlertStatus   { return s.get().Alerts(ctx) }

// TestStatusPageRefreshes checks the page's script: a node going down shows
// up without a reload.
func TestStatusPageRefreshes(t *testing.T) {
	bctx := newBrowser(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	healthy := incident()
	for i := range healthy.checks {
		c := &healthy.checks[i]
		if c.Target == "shop-home/direct/lb2" {
			*c = target("shop-home", "http", "direct", "lb2", web.StateUp, "success", 0.012)
		}
	}
	src := &swapSource{src: healthy}
	s := web.New(web.Options{Logger: log, Gatherer: prometheus.NewRegistry()})
	st, err := web.NewStatus(web.StatusOptions{Source: src, Logger: log, Refresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.Register(s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	sel := chromedp.CSS(`td[data-target="shop-home/direct/lb2"]`)
	do(t, bctx, 15*time.Second, "loading", chromedp.Navigate("http://"+l.Addr().String()+"/"), chromedp.WaitVisible(sel))
	if v := run(t, bctx, 5*time.Second, "state", chromedp.AttributeValue(sel, "data-state")); v.Value != "up" {
		t.Fatalf("before: %q", v.Value)
	}
	// The reader opens the folded pending alerts; a refresh keeps them open.
	do(t, bctx, 5*time.Second, "opening the pending alerts", chromedp.Click(chromedp.CSS(`#alerts-pending > summary`)))
	src.set(incident())
	do(t, bctx, 10*time.Second, "waiting for the refresh", chromedp.WaitVisible(chromedp.CSS(`td[data-target="shop-home/direct/lb2"][data-state="down"]`)))
	if open := run(t, bctx, 5*time.Second, "pending alerts", chromedp.Evaluate[bool](`document.getElementById("alerts-pending").open`)); !open {
		t.Error("the refresh folded the pending alerts the reader had opened")
	}
}

func (s *swapSource) Events(ctx context.Context, n int) ([]storage.Event, error) {
	return s.get().Events(ctx, n)
}
