package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vantage-monitoring/vantage/web"
)

// layout is what the on-call person sees of the page in the browser.
type layout struct {
	FirstIncident string  `json:"firstIncident"`
	Incidents     int     `json:"incidents"`
	NowTop        float64 `json:"nowTop"`
	GridTop       float64 `json:"gridTop"`
	FirstCard     rect    `json:"firstCard"`
	NodesTop      float64 `json:"nodesTop"`
	Overflow      float64 `json:"overflow"`
	// Visible counts of rows the page folds away or paints red.
	PendingShown  int `json:"pendingShown"`
	ResolvedShown int `json:"resolvedShown"`
	RedShown      int `json:"redShown"`
	HasDomains    bool
	// Computed colours of one cell per state (empty: no such cell).
	UpBg       string `json:"upBg"`
	DegradedBg string `json:"degradedBg"`
	DownBg     string `json:"downBg"`
	// Outlines of the degraded node's healthy siblings.
	SiblingOutlines []string `json:"siblingOutlines"`
	Cell            rect     `json:"cell"` // the cell named by the scene
}

type rect struct{ Top, Bottom, Left, Right float64 }

// layoutJS measures the rendered page. cell is a target key or "".
func layoutJS(cell string) string {
	return `(() => {
  const q = s => document.querySelector(s);
  const box = e => { if (!e) return {Top: -1, Bottom: -1, Left: -1, Right: -1}; const r = e.getBoundingClientRect(); return {Top: r.top, Bottom: r.bottom, Left: r.left, Right: r.right}; };
  const shown = s => Array.from(document.querySelectorAll(s)).filter(e => e.checkVisibility()).length;
  const bg = s => { const e = q(s); return e ? getComputedStyle(e).backgroundColor : ""; };
  const first = q("#now .incident");
  const nodes = q("#nodes");
  return {
    firstIncident: first ? first.textContent.replace(/\s+/g, " ").trim() : "",
    incidents: document.querySelectorAll("#now li.incident").length,
    nowTop: box(q("#now")).Top,
    gridTop: box(q("#grid")).Top,
    firstCard: box(q("#grid .check")),
    nodesTop: nodes ? box(nodes).Top : -1,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    pendingShown: shown("tr.alert.pending"),
    resolvedShown: shown("tr.alert.resolved"),
    redShown: shown(".incident.down, .incident.firing, td.cell.down, tr.alert.firing, .badge.firing"),
    HasDomains: !!q("#domains"),
    upBg: bg("td.cell.up"), degradedBg: bg("td.cell.degraded"), downBg: bg("td.cell.down"),
    siblingOutlines: Array.from(document.querySelectorAll('td.cell[data-state="up"]')).map(e => getComputedStyle(e).outlineStyle).filter((v, i, a) => a.indexOf(v) === i),
    cell: box(q('td[data-target="` + cell + `"]')),
  };
})()`
}

// measure loads url at the on-call screen size (1400×1000) and measures it,
// saving what is on screen and the whole page as name.png and
// name-full.png.
func measure(t *testing.T, url, cell, name string) layout {
	t.Helper()
	bctx := newBrowser(t)
	do(t, bctx, 30*time.Second, "loading "+url,
		chromedp.EmulateViewport(1400, 1000), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#now")))
	l := run(t, bctx, 10*time.Second, "measuring the page", chromedp.Evaluate[layout](layoutJS(cell)))
	saveShot(t, bctx, name+".png", true)
	saveShot(t, bctx, name+"-full.png", false)
	t.Logf("%s: %+v", name, l)
	return l
}

// TestStatusPageLayoutInBrowser renders three demo-shop scenes in headless
// Chromium at 1400×1000 and checks what the person on call sees without
// scrolling: what is wrong first, naming it; the check grid on screen; a
// degraded node in its own colour; noise folded away.
func TestStatusPageLayoutInBrowser(t *testing.T) {
	common := func(t *testing.T, l layout) {
		t.Helper()
		if l.NowTop < 0 || l.NowTop > 80 {
			t.Errorf("the incident list starts at %.0f px, want it first under the banner", l.NowTop)
		}
		if l.GridTop < 0 || l.GridTop >= 1000 || l.FirstCard.Bottom > 1000 {
			t.Errorf("the check grid is not on screen at 1400×1000: grid top %.0f px, first card %+v", l.GridTop, l.FirstCard)
		}
		if l.Overflow > 1 {
			t.Errorf("the page is %.0f px wider than the window", l.Overflow)
		}
		if l.PendingShown != 0 || l.ResolvedShown != 0 {
			t.Errorf("%d pending and %d resolved alert rows shown: they should fold away", l.PendingShown, l.ResolvedShown)
		}
	}

	t.Run("healthy", func(t *testing.T) {
		e := newStatusEnvSource(t, healthyShop(false))
		l := measure(t, e.srv.URL+"/", "", "status-healthy")
		common(t, l)
		if !strings.HasPrefix(l.FirstIncident, "Nothing is wrong") || l.Incidents != 0 {
			t.Errorf("first line %q, %d incidents", l.FirstIncident, l.Incidents)
		}
		if l.RedShown != 0 {
			t.Errorf("%d red elements on a healthy page", l.RedShown)
		}
		if l.HasDomains {
			t.Error("a page without browser checks shows the domain section")
		}
		if len(l.SiblingOutlines) != 1 || l.SiblingOutlines[0] != "none" {
			t.Errorf("healthy cells are framed: outline styles %q", l.SiblingOutlines)
		}
	})

	t.Run("slow node", func(t *testing.T) {
		e := newStatusEnvSource(t, slowNodeShop())
		l := measure(t, e.srv.URL+"/", "shop-home/direct/lb2", "status-slow-node")
		common(t, l)
		if !strings.HasPrefix(l.FirstIncident, "lb2 degraded since 20:57 (3m): 17% of runs slow") || l.Incidents != 1 {
			t.Errorf("first line %q, %d incidents", l.FirstIncident, l.Incidents)
		}
		if l.Cell.Top < 0 || l.Cell.Bottom > 1000 {
			t.Errorf("lb2's shop-home cell is off screen: %+v", l.Cell)
		}
		if l.NodesTop < 0 || l.NodesTop > 1000 {
			t.Errorf("the node table starts at %.0f px", l.NodesTop)
		}
		if l.DegradedBg == "" || l.DegradedBg == l.UpBg || l.UpBg == "" {
			t.Errorf("degraded cell background %q, up cell %q: a degraded node must not look UP", l.DegradedBg, l.UpBg)
		}
		if len(l.SiblingOutlines) != 1 || l.SiblingOutlines[0] != "none" {
			t.Errorf("lb2's healthy siblings are framed: outline styles %q", l.SiblingOutlines)
		}
	})

	t.Run("failing domain", func(t *testing.T) {
		e := newStatusEnvSource(t, failingDomainShop())
		l := measure(t, e.srv.URL+"/", "cdn-static/direct/", "status-failing-domain")
		common(t, l)
		if !strings.HasPrefix(l.FirstIncident, "static.shop-cdn.test failing since 20:55 (4m): 48 of 48 requests failed; in web-checkout") || l.Incidents != 3 {
			t.Errorf("first line %q, %d incidents", l.FirstIncident, l.Incidents)
		}
		if !l.HasDomains || l.DownBg == "" || l.DownBg == l.UpBg {
			t.Errorf("domain section %v, down cell background %q vs up %q", l.HasDomains, l.DownBg, l.UpBg)
		}
	})
}

var _ web.HealthSource = (*scene)(nil)
