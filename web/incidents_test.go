package web_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/web"
)

// The scenes below are the demo shop as the daemon reports it (its
// checks, paths, nodes lb1-lb3 and alert rules), at tNow.
var tNow = t0.Add(time.Hour)

// scene is a HealthSource over fixed data.
type scene struct {
	fixedSource
	m     web.MeasurementStatus
	nodes []web.NodeStatus
}

func (s *scene) Measurement(context.Context) web.MeasurementStatus { return s.m }
func (s *scene) Nodes(context.Context) []web.NodeStatus            { return s.nodes }

var lbNodes = []string{"lb1", "lb2", "lb3"}

// healthyShop is the demo shop with nothing wrong, the way a loaded
// machine shows it: one alert pending on noise, two resolved a while ago.
// browser adds the web-checkout journey.
func healthyShop(browser bool) *scene {
	s := &scene{m: web.MeasurementStatus{LagSeconds: 0.004, ThresholdSeconds: 0.1}}
	for _, check := range []string{"shop-home", "shop-product", "shop-search", "shop-category"} {
		for _, p := range []string{"direct", "alt-source"} {
			for i, n := range lbNodes {
				c := target(check, "http", p, n, web.StateUp, "success", 0.003+0.0004*float64(i))
				c.NodeAddress = fmt.Sprintf("127.0.0.%d", 11+i)
				c.NodeSlowdown = fp(1 + 0.1*float64(i))
				s.checks = append(s.checks, c)
			}
		}
	}
	for _, p := range []string{"direct", "alt-source"} {
		c := target("app-checkout", "http", p, "127.0.0.21", web.StateUp, "success", 0.004)
		c.NodeAddress = "127.0.0.21"
		s.checks = append(s.checks, c,
			target("cdn-static", "tcp", p, "", web.StateUp, "success", 0.002),
			target("cdn-app-js", "http", p, "", web.StateUp, "success", 0.002),
			target("shop-dns", "dns", p, "", web.StateUp, "success", 0.0004))
		if browser {
			for i, n := range lbNodes {
				c := target("web-checkout", "browser", p, n, web.StateUp, "success", 0.6)
				c.NodeAddress = fmt.Sprintf("127.0.0.%d", 11+i)
				s.checks = append(s.checks, c)
				s.domains = append(s.domains,
					web.DomainStatus{Target: c.Target, Check: c.Check, Path: p, Node: n, Domain: "static.shop-cdn.test", Window: win(time.Minute, 4, 4, 0.01)},
					web.DomainStatus{Target: c.Target, Check: c.Check, Path: p, Node: n, Domain: "www.shop.test", Window: win(time.Minute, 4, 4, 0.02)})
			}
		}
	}
	for _, n := range lbNodes {
		s.nodes = append(s.nodes, web.NodeStatus{Node: n, Address: "127.0.0." + map[string]string{"lb1": "11", "lb2": "12", "lb3": "13"}[n],
			State: web.NodeOK, SlowShare: fp(0.003), SiblingSlowShare: fp(0.004), Evidence: fp(0.2), P90: fp(0.004), SiblingP90: fp(0.004)})
	}
	// The daemon lists every node a check probes, the API's one address too.
	s.nodes = append(s.nodes, web.NodeStatus{Node: "127.0.0.21", Address: "127.0.0.21", State: web.NodeNotEnoughData})
	s.alerts = []web.AlertStatus{
		alert("ShopSlowForCustomers", "pending", map[string]string{"check": "shop-search", "path": "alt-source", "node": "lb3"}, tNow.Add(-20*time.Second)),
		alert("ShopSlowForCustomers", "pending", map[string]string{"check": "shop-home", "path": "direct", "node": "lb1"}, tNow.Add(-15*time.Second)),
		alert("ShopSlowForCustomers", "pending", map[string]string{"check": "app-checkout", "path": "direct", "node": "127.0.0.21"}, tNow.Add(-5*time.Second)),
		alert("ShopSlowForCustomers", "resolved", map[string]string{"check": "shop-home", "path": "direct", "node": "lb1"}, t0.Add(5*time.Minute)),
		alert("ShopSlowForCustomers", "resolved", map[string]string{"check": "shop-product", "path": "direct", "node": "lb3"}, t0.Add(7*time.Minute)),
	}
	s.events = []storage.Event{{ID: 1, Time: t0, Kind: storage.DaemonStart, Detail: "9 checks, 34 targets"}}
	return s
}

// alert is one instance of a demo rule at state, active since at.
func alert(name, state string, labels map[string]string, at time.Time) web.AlertStatus {
	l := map[string]string{"alertname": name, "severity": "page", "location": "demo"}
	key := name + "{"
	for _, k := range []string{"check", "domain", "node", "path"} {
		if v, ok := labels[k]; ok {
			l[k] = v
			key += k + "=" + v + ","
		}
	}
	a := web.AlertStatus{Name: name, Key: key + "}", Labels: l, State: state, ActiveAt: at,
		Annotations: map[string]string{"summary": name + " " + labels["node"] + labels["domain"]}}
	switch state {
	case "firing":
		a.FiredAt, a.FiredCount = at.Add(30*time.Second), 1
	case "resolved":
		a.FiredAt, a.ResolvedAt, a.FiredCount = at.Add(30*time.Second), at.Add(3*time.Minute), 1
	}
	return a
}

func (s *scene) target(key string) *web.CheckStatus {
	for i := range s.checks {
		if s.checks[i].Target == key {
			return &s.checks[i]
		}
	}
	panic("no target " + key)
}

// slowNodeShop: lb2 answers 17 % of requests 1.5 s late since 3 minutes;
// the detector finds it degraded, the node alert fires and the per-target
// alerts it explains are folded into it.
func slowNodeShop() *scene {
	s := healthyShop(false)
	since := tNow.Add(-3 * time.Minute)
	for _, check := range []string{"shop-home", "shop-product", "shop-search", "shop-category"} {
		for _, p := range []string{"direct", "alt-source"} {
			c := s.target(check + "/" + p + "/lb2")
			c.Windows[0].P90, c.Windows[0].P99 = fp(1.5), fp(1.52)
			c.NodeSlowdown = fp(150)
		}
	}
	s.nodes[1] = web.NodeStatus{Node: "lb2", Address: "127.0.0.12", State: web.NodeDegraded, SlowShare: fp(0.17), SiblingSlowShare: fp(0.003),
		Evidence: fp(12), P90: fp(1.5), SiblingP90: fp(0.005), SlowRunsTake: fp(1.507), Since: since,
		Affected: []string{"shop-home via direct", "shop-product via direct", "shop-home via alt-source", "shop-search via direct",
			"shop-category via direct", "shop-product via alt-source", "shop-search via alt-source", "shop-category via alt-source"}}
	s.alerts = append(s.alerts, alert("LoadBalancerNodeDegraded", "firing", map[string]string{"node": "lb2"}, since))
	folded := alert("ShopSlowForCustomers", "firing", map[string]string{"check": "shop-home", "path": "direct", "node": "lb2"}, since.Add(time.Minute))
	folded.InhibitedBy = "LoadBalancerNodeDegraded|node=lb2"
	s.alerts = append(s.alerts, folded)
	s.events = append(s.events, storage.Event{ID: 2, Time: since.Add(30 * time.Second), Kind: storage.AlertFiring, Alert: "LoadBalancerNodeDegraded", Node: "lb2"})
	return s
}

// failingDomainShop: the CDN resets every connection since 4 minutes. The
// browser journey's requests to it fail, its own checks are down.
func failingDomainShop() *scene {
	s := healthyShop(true)
	since := tNow.Add(-4 * time.Minute)
	for i := range s.domains {
		if d := &s.domains[i]; d.Domain == "static.shop-cdn.test" {
			d.Window = win(time.Minute, 8, 0, 0)
		}
	}
	id := int64(40)
	for _, key := range []string{"cdn-static/direct/", "cdn-static/alt-source/", "cdn-app-js/direct/", "cdn-app-js/alt-source/"} {
		c := s.target(key)
		down := target(c.Check, c.Type, c.Path, "", web.StateDown, "error", 0)
		down.LastReason = "read tcp4 127.0.0.1:43809->127.0.0.31:8443: read: connection reset by peer"
		id++
		down.LastFailedRunID = id
		*c = down
		s.events = append(s.events, storage.Event{ID: id, Time: since.Add(time.Duration(id-40) * time.Second), Kind: storage.TargetDown,
			TargetKey: key, Check: c.Check, Path: c.Path, Detail: down.LastReason, RunID: id})
	}
	s.alerts = append(s.alerts, alert("DependencyDomainFailing", "firing", map[string]string{"check": "web-checkout", "domain": "static.shop-cdn.test"}, since))
	// An earlier episode that resolved does not date this one; the
	// current one's first pending event does.
	dom := "static.shop-cdn.test"
	s.events = append(s.events,
		storage.Event{ID: 30, Time: t0.Add(10 * time.Minute), Kind: storage.AlertFiring, Alert: "DependencyDomainFailing", Domain: dom},
		storage.Event{ID: 31, Time: t0.Add(15 * time.Minute), Kind: storage.AlertResolved, Alert: "DependencyDomainFailing", Domain: dom},
		storage.Event{ID: 32, Time: since.Add(-30 * time.Second), Kind: storage.AlertPending, Alert: "DependencyDomainFailing", Domain: dom})
	sort.Slice(s.events, func(i, j int) bool { return s.events[i].Time.Before(s.events[j].Time) })
	return s
}

// incidentLines are the page's "what is wrong now" lines as text.
var incidentRE = regexp.MustCompile(`<li class="incident ([a-z]+)" data-kind="([a-z]+)">([\s\S]*?)</li>`)
var tagRE = regexp.MustCompile(`<[^>]+>`)

func incidentLines(page string) []string {
	var out []string
	for _, m := range incidentRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1]+"|"+m[2]+"|"+tagRE.ReplaceAllString(m[3], ""))
	}
	return out
}

func renderScene(t *testing.T, s web.StatusSource) string {
	t.Helper()
	e := newStatusEnvSource(t, s)
	code, _, body := e.get(t, "/")
	if code != 200 {
		t.Fatalf("status page: %d", code)
	}
	return string(body)
}

// TestIncidentLines: the page opens with what is wrong now, one line per
// incident naming the node or domain, since when and how bad; a healthy
// shop says so in one line, and its noise does not.
func TestIncidentLines(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		page := renderScene(t, healthyShop(false))
		if got := incidentLines(page); len(got) != 0 {
			t.Errorf("incident lines on a healthy shop: %q", got)
		}
		if !strings.Contains(page, `<p class="incident ok" id="all-clear">Nothing is wrong: 32 of 32 targets up; 3 alerts pending, not paged.</p>`) {
			t.Errorf("no all-clear line:\n%s", section(page, "now"))
		}
		// No browser check: no domain section; the pending and resolved
		// alerts fold away; no cell stands out.
		if regexp.MustCompile(`class="cell [a-z]+ outlier"`).MatchString(page) {
			t.Error("a cell of a healthy shop stands out")
		}
		for _, unwanted := range []string{`id="domains"`, "Every domain loaded by browser checks answers", `<details class="fold" id="alerts-pending" open`} {
			if strings.Contains(page, unwanted) {
				t.Errorf("a healthy page without browser checks has %q", unwanted)
			}
		}
		// The API's single address has no siblings: no row in the node table.
		if nodes := section(page, "nodes"); !strings.Contains(nodes, "lb3") || strings.Contains(nodes, "127.0.0.21") {
			t.Errorf("node table:\n%s", nodes)
		}
		for _, want := range []string{`<details class="fold" id="alerts-pending"><summary>3 pending`, `<details class="fold" id="alerts-resolved"><summary>2 resolved`, "No alert is firing."} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if page := renderScene(t, healthyShop(true)); !strings.Contains(page, "Every domain loaded by browser checks answers.") {
			t.Error("with a browser check the domain section should say every domain answers")
		}
	})
	t.Run("slow node", func(t *testing.T) {
		page := renderScene(t, slowNodeShop())
		got := incidentLines(page)
		want := "degraded|node|lb2 degraded since 20:57 (3m): 17% of runs slow or failed (0.3% on its siblings), its slow runs take 1.51s against a p90 of 5.0ms on its siblings; shop-home, shop-product, shop-search, shop-category"
		if len(got) != 1 || got[0] != want {
			t.Errorf("incident lines:\n got %q\nwant %q", got, want)
		}
		// lb2's cells are DEGRADED in their own colour, not UP; its
		// siblings are not framed.
		for _, p := range []string{"direct", "alt-source"} {
			if class, b := cell(t, page, "shop-home/"+p+"/lb2"); class != "cell degraded" || !strings.Contains(b, ">DEGRADED<") {
				t.Errorf("lb2 via %s: %q\n%s", p, class, b)
			}
			for _, n := range []string{"lb1", "lb3"} {
				if class, b := cell(t, page, "shop-home/"+p+"/"+n); class != "cell up" {
					t.Errorf("%s via %s: %q\n%s", n, p, class, b)
				}
			}
		}
		// Its cards are framed in the degraded colour, not as down.
		if !strings.Contains(page, `<article class="check degraded" id="check-shop-home"`) || strings.Contains(page, `<article class="check bad"`) {
			t.Error("the slow node's cards are not framed as degraded (or some as down)")
		}
		if !strings.Contains(page, `<tr class="node degraded">`) || !strings.Contains(page, `<td class="targets">8 degraded</td>`) {
			t.Errorf("node table:\n%s", section(page, "nodes"))
		}
		// The folded per-target alert is listed after the node alert, not
		// as a page of its own.
		if i, j := strings.Index(page, `<tr class="alert firing">`), strings.Index(page, `<tr class="alert folded">`); i < 0 || j < i {
			t.Errorf("alert rows: firing at %d, folded at %d", i, j)
		}
	})
	t.Run("failing domain", func(t *testing.T) {
		page := renderScene(t, failingDomainShop())
		got := incidentLines(page)
		if len(got) != 3 {
			t.Fatalf("want the domain and its two checks, got %q", got)
		}
		want := []string{
			"down|domain|static.shop-cdn.test failing since 20:55 (4m): 48 of 48 requests failed; in web-checkout",
			"down|check|cdn-static down since 20:56 (3m): both targets via direct, alt-source — read tcp4 127.0.0.1:43809-&gt;127.0.0.31:8443: read: connection reset by peer latest failed run",
			"down|check|cdn-app-js down since 20:56 (3m): both targets via direct, alt-source — read tcp4 127.0.0.1:43809-&gt;127.0.0.31:8443: read: connection reset by peer latest failed run",
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("line %d:\n got %q\nwant %q", i+1, got[i], want[i])
			}
		}
		if !strings.Contains(page, `id="domains"`) || !strings.Contains(page, "static.shop-cdn.test</th>") {
			t.Errorf("domain section:\n%s", section(page, "domains"))
		}
	})
	t.Run("node down", func(t *testing.T) {
		// The evening of the README's story: lb2 refuses on every path.
		page := renderScene(t, incident())
		got := incidentLines(page)
		if len(got) == 0 || !strings.HasPrefix(got[0], "down|node|lb2 down since 20:02 (58m): down on 2 of 2 targets, the other nodes answer; shop-home — GET https://www.shop.test/?token=&lt;secret&gt;: dial tcp 127.0.0.12:443: connect: connection refused") {
			t.Errorf("first line: %q", got)
		}
		// The firing node alert is that line; a pending alert is none.
		for _, l := range got {
			if strings.Contains(l, "LoadBalancerNodeDegraded") || strings.Contains(l, "ShopSlowForCustomers") {
				t.Errorf("an alert the node line explains, or a pending one, has a line of its own: %q", l)
			}
		}
	})
}

// TestIncidentLinesHeldAndAlerts: a node the detector holds (vantage's own
// lag could explain it) is a line after the ones that page; a firing alert
// nothing else explains has a line of its own; the measurement alert does
// not while the page's measurement warning says it.
func TestIncidentLinesHeldAndAlerts(t *testing.T) {
	s := healthyShop(false)
	s.m = web.MeasurementStatus{Degraded: true, LagSeconds: 0.3, ThresholdSeconds: 0.1}
	s.nodes[2] = web.NodeStatus{Node: "lb3", Address: "127.0.0.13", State: web.NodeHeld, SlowShare: fp(0.05), SiblingSlowShare: fp(0.01),
		P90: fp(0.35), SiblingP90: fp(0.004), Affected: []string{"shop-home via direct"}}
	slow := alert("ShopSlowForCustomers", "firing", map[string]string{"check": "shop-product", "path": "direct", "node": "lb1"}, tNow.Add(-2*time.Minute))
	slow.Annotations["summary"] = "shop-product p99 1.8s via direct node lb1"
	lag := alert("VantageMeasurementDegraded", "firing", nil, tNow.Add(-5*time.Minute))
	lag.Measure = "measurement_lag"
	s.alerts = append(s.alerts, slow, lag)
	got := incidentLines(renderScene(t, s))
	want := []string{
		"firing|alert|ShopSlowForCustomers firing since 20:58 (1m): shop-product p99 1.8s via direct node lb1",
		"held|node|lb3 held: 5.0% of runs slow or failed (1.0% on its siblings), p90 350ms vs 4.0ms on its siblings; not paged: vantage&#39;s own lag is as large as the difference; shop-home",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("incident lines:\n got %q\nwant %q", got, want)
	}
}

// section is the HTML of the page's section with id, for failure messages.
func section(page, id string) string {
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		return "(no section " + id + ")"
	}
	j := strings.Index(page[i:], "</section>")
	if j < 0 {
		return page[i:]
	}
	return page[i : i+j]
}
