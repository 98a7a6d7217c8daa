package daemon_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

var (
	incidentLineRE = regexp.MustCompile(`<li class="incident ([a-z]+)" data-kind="([a-z]+)">([\s\S]*?)</li>`)
	allClearRE     = regexp.MustCompile(`<p class="incident ok" id="all-clear">Nothing is wrong: (\d+) of (\d+) targets up`)
	htmlTagRE      = regexp.MustCompile(`<[^>]+>`)
)

// incidentLines are the status page's "what is wrong now" lines as text,
// each prefixed with its class ("down: lb2 down since …").
func incidentLines(page string) []string {
	var out []string
	for _, m := range incidentLineRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1]+": "+html.UnescapeString(htmlTagRE.ReplaceAllString(m[3], "")))
	}
	return out
}

// control sends one request to the demo shop's fault control endpoint, as
// a user would with curl.
func control(t *testing.T, shop *demo.Shop, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, shop.ControlURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// TestStatusPageNamesTheBadNode drives the status page through the whole
// daemon watching the demo shop with its own config and alert rules: a
// healthy shop reads "Nothing is wrong"; with lb2 and the CDN refusing
// (set over the shop's control endpoint) the page's first line names lb2
// and the CDN's checks have lines of their own; once the faults are
// cleared the page is all clear again.
func TestStatusPageNamesTheBadNode(t *testing.T) {
	// The node detector holds a degraded verdict a while after the fault
	// ends (at most two minutes), and the node alert resolves after it.
	t.Parallel()
	shop := startShop(t)
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: time.Second, Timeout: 900 * time.Millisecond})
	r := startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg), StoragePath: t.TempDir(), EvalInterval: 500 * time.Millisecond})

	page := func() string {
		code, body := r.do(t, "GET", "/", nil)
		if code != 200 {
			t.Fatalf("GET /: %d", code)
		}
		return body
	}
	// A loaded machine can time out a healthy run now and then: wait for
	// the page to settle rather than take its first look.
	allClear := func(when string, within time.Duration) {
		t.Helper()
		testenv.Eventually(t, within, "the page all clear "+when, func() error {
			p := page()
			if m := allClearRE.FindStringSubmatch(p); m == nil || m[1] != m[2] {
				return fmt.Errorf("incident lines %q", incidentLines(p))
			}
			return nil
		})
	}
	allClear("before the faults", 2*time.Minute)

	control(t, shop, "PUT", "/faults/lb2", `{"refuse":true}`)
	control(t, shop, "PUT", "/faults/static.shop-cdn.test", `{"refuse":true}`)
	var lines []string
	testenv.Eventually(t, 2*time.Minute, "lb2 first, the CDN's checks after it", func() error {
		lines = incidentLines(page())
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "down: lb2 down since ") {
			return fmt.Errorf("lines %q", lines)
		}
		var cdnStatic, cdnJS bool
		for _, l := range lines[1:] {
			cdnStatic = cdnStatic || strings.HasPrefix(l, "down: cdn-static down since ")
			cdnJS = cdnJS || strings.HasPrefix(l, "down: cdn-app-js down since ")
		}
		if !cdnStatic || !cdnJS {
			return fmt.Errorf("no down line for cdn-static and cdn-app-js: %q", lines)
		}
		return nil
	})
	t.Logf("incident lines:\n%s", strings.Join(lines, "\n"))
	// lb2's line names every check it serves and says what the others do.
	for _, want := range []string{"the other nodes answer", "shop-home", "shop-product", "shop-search", "shop-category", "latest failed run"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("lb2's line lacks %q: %q", want, lines[0])
		}
	}
	// No healthy node has a line of its own that pages.
	for _, l := range lines {
		for _, healthy := range []string{"lb1", "lb3"} {
			if strings.HasPrefix(l, "down: "+healthy+" ") || strings.HasPrefix(l, "degraded: "+healthy+" ") {
				t.Errorf("healthy %s has an incident line: %q", healthy, l)
			}
		}
	}

	control(t, shop, "DELETE", "/faults", "")
	allClear("after the faults are cleared", 5*time.Minute)
}

// TestStatusPageNamesThePartlySlowNode is the new user's evening: lb2
// slow on 30 % of its responses and the CDN refusing, both set over the
// control endpoint. The page's first line is lb2's, DEGRADED with the node
// detector's evidence; its cells are DEGRADED, not UP; the CDN's checks
// follow.
func TestStatusPageNamesThePartlySlowNode(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	// As in the node detector's own test: 1.5 s of injected latency and
	// min_excess 200ms keep the fault clear of a loaded machine's noise.
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: 2 * time.Second, Timeout: 1900 * time.Millisecond, NoAltPath: true})
	cfg = strings.Replace(cfg, "global:\n", "global:\n  node_detection: {baseline: 3m, min_excess: 200ms}\n", 1)
	r := startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg), StoragePath: t.TempDir(), EvalInterval: 500 * time.Millisecond})

	control(t, shop, "PUT", "/faults/lb2", `{"latency":"1.5s","latency_ratio":0.3}`)
	control(t, shop, "PUT", "/faults/static.shop-cdn.test", `{"refuse":true}`)
	var lines []string
	var body string
	testenv.Eventually(t, 3*time.Minute, "lb2 degraded on the first line", func() error {
		_, body = r.do(t, "GET", "/", nil)
		lines = incidentLines(body)
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "degraded: lb2 degraded since ") {
			return fmt.Errorf("lines %q", lines)
		}
		return nil
	})
	t.Logf("incident lines:\n%s", strings.Join(lines, "\n"))
	if !strings.Contains(lines[0], "of runs slow or failed") || !strings.Contains(lines[0], "on its siblings") {
		t.Errorf("lb2's line gives no evidence: %q", lines[0])
	}
	var cdn bool
	for _, l := range lines[1:] {
		cdn = cdn || strings.HasPrefix(l, "down: cdn-static down") || strings.HasPrefix(l, "down: cdn-app-js down")
	}
	if !cdn {
		t.Errorf("no line for the CDN's checks: %q", lines)
	}
	if n := strings.Count(body, `data-state="degraded"`); n == 0 {
		t.Error("no cell of the degraded node is DEGRADED")
	}
	if regexp.MustCompile(`data-target="[^"]*/lb[13]" data-state="degraded"`).MatchString(body) {
		t.Error("a healthy node's cell is DEGRADED")
	}
}
