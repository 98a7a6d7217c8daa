package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
)

func testCopy(name string, ratio float64, net3 int, faults ...window) shopCopy {
	c := shopCopy{Name: name, Ratio: ratio, PageTarget: pageTarget(ratio), Faults: faults}
	for i := range 3 {
		c.Nodes = append(c.Nodes, nodeID{fmt.Sprintf("%s-lb%d", name, i+1), fmt.Sprintf("127.0.%d.%d", net3, 11+i)})
	}
	c.Bad = c.Nodes[1]
	return c
}

// TestAnalyze replays a recorded notification list over fault windows:
// pages, false pages, time to the node page, staying firing, time to
// resolve and pages per incident.
func TestAnalyze(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	win := func(a, b int) window { return window{at(a), at(b)} }
	copies := []shopCopy{
		testCopy("healthy", 0, 11),
		testCopy("slow100", 1, 12, win(100, 400), win(580, 880)),
		testCopy("slow10", 0.1, 13, win(100, 400), win(580, 880)),
	}
	end := at(1060)
	node := func(s int, status, n string) notice {
		return notice{At: at(s), Status: status, Labels: map[string]string{"alertname": nodeAlert, "node": n, "severity": "page"}}
	}
	slow := func(s int, status, check, n string) notice {
		return notice{At: at(s), Status: status, Labels: map[string]string{"alertname": "ShopSlowForCustomers",
			"check": check, "path": strings.SplitN(check, "-", 2)[0] + "-direct", "node": n}}
	}
	notices := []notice{
		// healthy: one page (a false one), then its resolution.
		slow(50, "firing", "healthy-web-checkout", "healthy-lb3"),
		slow(170, "resolved", "healthy-web-checkout", "healthy-lb3"),
		// slow100 trial 1: node page after 25 s, a repeat (not a page),
		// an extra per-check page on lb2, resolved 60 s after the end.
		node(125, "firing", "slow100-lb2"),
		slow(130, "firing", "slow100-shop-home", "slow100-lb2"),
		node(200, "firing", "slow100-lb2"),
		node(460, "resolved", "slow100-lb2"),
		slow(470, "resolved", "slow100-shop-home", "slow100-lb2"),
		// slow100 trial 2, named by address: page after 20 s, RESOLVED
		// mid-fault, fires again, never resolves.
		node(600, "firing", "127.0.12.12"),
		node(700, "resolved", "127.0.12.12"),
		node(720, "firing", "127.0.12.12"),
		// slow10 trial 1: no node page; a page on lb1 (false).
		node(200, "firing", "slow10-lb1"),
		node(300, "resolved", "slow10-lb1"),
		// slow10: a node page after trial 1 ended (false), still firing
		// when trial 2 starts (carried), resolved 20 s after it ends.
		node(450, "firing", "slow10-lb2"),
		node(900, "resolved", "slow10-lb2"),
		// Nobody's.
		{At: at(30), Status: "firing", Labels: map[string]string{"alertname": "VantageMeasurementDegraded"}},
		// A resolution for an alert never seen firing is not a page.
		node(40, "resolved", "slow10-lb3"),
	}
	// The receiver may record out of order across concurrent deliveries.
	slices.Reverse(notices)

	f := analyze(copies, notices, t0, end)
	if got := f.Unattributed; len(got) != 1 || got["VantageMeasurementDegraded"] != 1 {
		t.Errorf("unattributed = %v, want VantageMeasurementDegraded 1", got)
	}
	if len(f.Scenarios) != 3 {
		t.Fatalf("%d scenarios, want 3", len(f.Scenarios))
	}
	h, s100, s10 := f.Scenarios[0], f.Scenarios[1], f.Scenarios[2]
	if total(h.Pages) != 1 || h.FalsePages["ShopSlowForCustomers"] != 1 || len(h.Trials) != 0 {
		t.Errorf("healthy: pages %v false %v trials %d, want 1 false ShopSlowForCustomers and no trials", h.Pages, h.FalsePages, len(h.Trials))
	}
	if h.Watched != 1060*time.Second {
		t.Errorf("healthy watched %s, want 17m40s", h.Watched)
	}

	if total(s100.FalsePages) != 0 {
		t.Errorf("slow100 false pages %v, want none", s100.FalsePages)
	}
	if got := s100.Pages; got[nodeAlert] != 3 || got["ShopSlowForCustomers"] != 1 {
		t.Errorf("slow100 pages %v, want node 3 (the repeat is not one) and ShopSlowForCustomers 1", got)
	}
	want1 := trialFigures{Fault: win(100, 400), Paged: true, PageAfter: 25 * time.Second, StayedFiring: true,
		FiringAtEnd: true, Resolved: true, ResolveAfter: 60 * time.Second,
		Pages: map[string]int{nodeAlert: 1, "ShopSlowForCustomers": 1}}
	checkTrial(t, "slow100 trial 1", s100.Trials[0], want1)
	want2 := trialFigures{Fault: win(580, 880), Paged: true, PageAfter: 20 * time.Second, StayedFiring: false,
		FiringAtEnd: true, Resolved: false, Pages: map[string]int{nodeAlert: 2}}
	checkTrial(t, "slow100 trial 2", s100.Trials[1], want2)

	if got := s10.FalsePages; total(got) != 2 || got[nodeAlert] != 2 {
		t.Errorf("slow10 false pages %v, want 2 node pages (lb1; lb2 after the fault)", got)
	}
	checkTrial(t, "slow10 trial 1", s10.Trials[0], trialFigures{Fault: win(100, 400),
		Pages: map[string]int{nodeAlert: 2}}) // lb1 at 200 s and lb2 at 450 s, before trial 2
	checkTrial(t, "slow10 trial 2", s10.Trials[1], trialFigures{Fault: win(580, 880), Paged: true, Carried: true,
		StayedFiring: true, FiringAtEnd: true, Resolved: true, ResolveAfter: 20 * time.Second, Pages: map[string]int{}})

	md := f.markdown(detectionSetup{command: "go run ./bench -detection", started: t0, ended: end,
		machine: machine{cores: 2, cpu: "Test CPU", load: "1.00 / 1.00 / 1.00"}, loadEnd: "2.00 / 1.00 / 1.00",
		interval: 10 * time.Second, latency: 1500 * time.Millisecond, on: 5 * time.Minute, off: 3 * time.Minute,
		warmup: 2 * time.Minute, trials: 2, burners: 2, browser: true, seed: 7})
	for _, want := range []string{
		detectionHeading + "\n",
		"| pages | 1 (ShopSlowForCustomers 1) | 0 | MISS |",
		"| false pages | 0 | 0 | PASS |",
		"| fault → node page naming slow100-lb2, median / worst | 22 s / 25 s | ≤ 30 s in every trial | PASS |",
		"| node alert stayed firing through the fault | 1/2 | every trial | MISS |",
		"| fault end → RESOLVED, median / worst | 60 s / 60 s (1 of 2 trials); 1 not resolved before the next fault or the end | ≤ 120 s in every trial | MISS |",
		"| fault end → RESOLVED, median / worst | 20 s / 20 s (1 of 2 trials) | ≤ 120 s in every trial | MISS |",
		"### Copy `slow10`: slow10-lb2 +1.5 s on 10 % of responses, 2 trials",
		"at a 10s interval, watching 3 copies",
		"5m on and 3m off, 2 trials each, after a 2m warm-up",
		"| pages per incident (per trial) | 2, 2 | exactly 1 (the node page) | MISS |",
		"| fault → node page naming slow10-lb2, median / worst | none; 1 carried over from a page before the fault | ≤ 120 s in every trial | MISS |",
		"| trials paged while the fault was on | 1/2 | every trial | MISS |",
		"| slow10 | 2 | +9m40s | carried | yes | 20 s | 0 |",
		"### Pages no copy owns (no node, check or path label of a copy)\n\n| measure | value | target | verdict |\n|---|--:|---|---|\n| pages | 1 (VantageMeasurementDegraded 1) | 0 | MISS |",
		"- Load average (1/5/15 min): 1.00 / 1.00 / 1.00 at the start, 2.00 / 1.00 / 1.00 at the end",
		"| slow100 | LoadBalancerNodeDegraded | 127.0.12.12 | 1 | 2 | 1 |",
		"| slow100 | LoadBalancerNodeDegraded | slow100-lb2 | 1 | 2 | 1 |",
		"| slow10 | LoadBalancerNodeDegraded | slow10-lb3 | 1 | 0 | 1 |",
		"| (none) | VantageMeasurementDegraded | — | 1 | 1 | 0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func checkTrial(t *testing.T, what string, got, want trialFigures) {
	t.Helper()
	g, w := got, want
	g.Pages, w.Pages = nil, nil
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
	if byAlert(got.Pages) != byAlert(want.Pages) {
		t.Errorf("%s: pages %s, want %s", what, byAlert(got.Pages), byAlert(want.Pages))
	}
}

func TestSpliceSection(t *testing.T) {
	doc := "# vantage benchmarks\n\nintro\n\n## A\n\na\n\n" + detectionHeading + "\n\nold figures\n\n## Notes\n\nnotes\n"
	sec := detectionHeading + "\n\nnew figures\n\n"
	got := spliceSection(doc, detectionHeading, sec)
	want := "# vantage benchmarks\n\nintro\n\n## A\n\na\n\n" + sec + "## Notes\n\nnotes\n"
	if got != want {
		t.Errorf("replace in the middle:\n%q\nwant\n%q", got, want)
	}
	if got := section(doc, detectionHeading); got != detectionHeading+"\n\nold figures\n\n" {
		t.Errorf("section = %q", got)
	}
	if got, want := spliceSection("# x\n\n## A\n\na\n", detectionHeading, sec), "# x\n\n## A\n\na\n\n"+sec; got != want {
		t.Errorf("append:\n%q\nwant\n%q", got, want)
	}
	if got := spliceSection("", detectionHeading, sec); got != sec {
		t.Errorf("empty doc: %q", got)
	}
	last := "# x\n\n" + detectionHeading + "\n\nold\n"
	if got, want := spliceSection(last, detectionHeading, sec), "# x\n\n"+sec; got != want {
		t.Errorf("last section:\n%q\nwant\n%q", got, want)
	}
	// A heading that only starts like ours is another section.
	other := "# x\n\n" + detectionHeading + " notes\n\nkeep\n"
	if section(other, detectionHeading) != "" {
		t.Errorf("matched a longer heading")
	}
}

// TestMergeConfigs combines the demo configs of two real shop copies and
// loads the result as the daemon would.
func TestMergeConfigs(t *testing.T) {
	var parts []copyConfig
	for k, name := range []string{"healthy", "slow30"} {
		ip := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, byte(11 + k), last}) }
		shop, err := demo.Start(context.Background(), demo.Options{
			Nodes: []demo.Node{{Name: name + "-lb1", IP: ip(11)}, {Name: name + "-lb2", IP: ip(12)}, {Name: name + "-lb3", IP: ip(13)}},
			APIIP: ip(21), StaticIP: ip(31), DNSAddr: ip(10).String() + ":0", ControlAddr: ip(10).String() + ":0",
			Dir: t.TempDir(), Logger: zerolog.Nop(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = shop.Close() })
		parts = append(parts, copyConfig{prefix: name, yaml: shop.ConfigWithOptions(demo.ConfigOptions{
			AltSourceIP: ip(2).String(), Browser: k == 0, WebhookURL: "http://127.0.0.1:9/hook"})})
	}
	merged, err := mergeConfigs(parts)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/vantage.yaml"
	if err := os.WriteFile(file, []byte(merged), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := kinds.Registry().Load(file, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("merged config does not load: %v\n%s", err, merged)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	var pathNames []string
	for _, p := range cfg.Paths {
		pathNames = append(pathNames, p.Name)
	}
	if want := []string{"healthy-direct", "healthy-alt-source", "slow30-direct", "slow30-alt-source"}; !slices.Equal(pathNames, want) {
		t.Errorf("paths %v, want %v", pathNames, want)
	}
	byName := map[string]checks.Check{}
	for _, c := range cfg.Checks {
		byName[c.Name] = c
		pre, _, _ := strings.Cut(c.Name, "-")
		if want := []string{pre + "-direct", pre + "-alt-source"}; !slices.Equal(c.Paths, want) {
			t.Errorf("check %s runs over %v, want %v", c.Name, c.Paths, want)
		}
	}
	for _, name := range []string{"healthy-shop-home", "healthy-web-checkout", "slow30-shop-home", "slow30-app-checkout"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("no check %s", name)
		}
	}
	if _, ok := byName["slow30-web-checkout"]; ok {
		t.Errorf("the browser journey runs on the faulted copy too")
	}
	if len(cfg.Notifiers) != 1 {
		t.Errorf("%d notifiers, want the one webhook", len(cfg.Notifiers))
	}
	alerts := map[string]checks.Alert{}
	for _, a := range cfg.Alerts {
		alerts[a.Name] = a
	}
	if a, ok := alerts["ShopSlowForCustomers"]; !ok || !a.Matches("slow30-shop-home") || a.Matches("healthy-web-checkout") || a.Matches("slow30-cdn-static") {
		t.Errorf("ShopSlowForCustomers checks %v: want each copy's own patterns", a.Checks)
	}
	// The browser journey has its own rule in the demo config.
	if a, ok := alerts["CheckoutJourneySlow"]; !ok || !a.Matches("healthy-web-checkout") || a.Matches("healthy-shop-home") {
		t.Errorf("CheckoutJourneySlow checks %v: want the healthy copy's browser journey only", a.Checks)
	}
	if a, ok := alerts[nodeAlert]; !ok || !a.Matches("healthy-shop-home") || !a.Matches("slow30-app-checkout") {
		t.Errorf("%s checks %v: want every check", nodeAlert, a.Checks)
	}
	if a, ok := alerts["DependencyDomainFailing"]; !ok || !a.Matches("healthy-web-checkout") || a.Matches("slow30-shop-home") {
		t.Errorf("DependencyDomainFailing checks %v: want only the healthy copy's browser journey", a.Checks)
	}
}

// TestMergeNodeNames: names from node_names maps get the copy prefix, so
// alerts grouped by node never merge two copies' lb2.
func TestMergeNodeNames(t *testing.T) {
	cfg := func(net3 int) string {
		return fmt.Sprintf(`global:
  interval: 10s
  node_names: {127.0.%[1]d.11: lb1, 127.0.%[1]d.12: lb2}
paths:
  - name: direct
checks:
  - name: shop-home
    type: http
    url: https://www.shop.test/
    node_names: {127.0.%[1]d.13: lb3}
`, net3)
	}
	merged, err := mergeConfigs([]copyConfig{{"healthy", cfg(11)}, {"slow10", cfg(12)}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Global struct {
			NodeNames map[string]string `yaml:"node_names"`
		}
		Checks []struct {
			Name      string
			NodeNames map[string]string `yaml:"node_names"`
		}
	}
	if err := yaml.Unmarshal([]byte(merged), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"127.0.11.11": "healthy-lb1", "127.0.11.12": "healthy-lb2",
		"127.0.12.11": "slow10-lb1", "127.0.12.12": "slow10-lb2"}
	if fmt.Sprint(doc.Global.NodeNames) != fmt.Sprint(want) {
		t.Errorf("global node_names %v, want %v", doc.Global.NodeNames, want)
	}
	if len(doc.Checks) != 2 || doc.Checks[1].Name != "slow10-shop-home" || doc.Checks[1].NodeNames["127.0.12.13"] != "slow10-lb3" {
		t.Errorf("checks %+v: want slow10-shop-home naming 127.0.12.13 slow10-lb3", doc.Checks)
	}
}

// TestAnalyzeAllTargetsMet: a bench that meets every target reads PASS on
// every row.
func TestAnalyzeAllTargetsMet(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	copies := []shopCopy{
		testCopy("healthy", 0, 11),
		testCopy("slow30", 0.3, 12, window{at(120), at(420)}, window{at(600), at(900)}),
	}
	var notices []notice
	for _, start := range []int{120, 600} {
		l := map[string]string{"alertname": nodeAlert, "node": "slow30-lb2"}
		notices = append(notices,
			notice{At: at(start + 45), Status: "firing", Labels: l},
			notice{At: at(start + 200), Status: "firing", Labels: l}, // an update
			notice{At: at(start + 300 + 70), Status: "resolved", Labels: l})
	}
	md := analyze(copies, notices, t0, at(1080)).markdown(detectionSetup{started: t0, ended: at(1080)})
	if strings.Contains(md, "MISS") {
		t.Errorf("a verdict is MISS:\n%s", md)
	}
	for _, want := range []string{
		"| pages | 0 | 0 | PASS |",
		"| fault → node page naming slow30-lb2, median / worst | 45 s / 45 s | ≤ 60 s in every trial | PASS |",
		"| fault end → RESOLVED, median / worst | 70 s / 70 s | ≤ 120 s in every trial | PASS |",
		"| pages per incident (per trial) | 1, 1 | exactly 1 (the node page) | PASS |",
		"| slow30 | LoadBalancerNodeDegraded | slow30-lb2 | 1 | 4 | 2 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestDetectionFlags(t *testing.T) {
	ok := detectionOptions{trials: 5, on: 5 * time.Minute, off: 3 * time.Minute, warmup: 2 * time.Minute,
		interval: 10 * time.Second, latency: 1500 * time.Millisecond, ratios: []float64{1, 0.3, 0.1}, burners: 2}
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if got := ok.plannedDuration(); got != 45*time.Minute {
		t.Errorf("planned %s, want the 45 minutes the bench must fit in", got)
	}
	bad := ok
	bad.trials, bad.ratios = 0, []float64{0.3, 0.3, 1.5}
	err := bad.validate()
	for _, want := range []string{"-detection.trials 0", "0.3 is listed twice", "1.5 is not in (0, 1]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if rs, err := parseRatios(" 1, 0.3,,0.1 "); err != nil || !slices.Equal(rs, []float64{1, 0.3, 0.1}) {
		t.Errorf("parseRatios = %v, %v", rs, err)
	}
	if _, err := parseRatios("1,x"); err == nil {
		t.Error("parseRatios accepted x")
	}
}
