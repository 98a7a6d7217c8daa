// Package fullstack runs vantage the way users deploy it (docs/deployment.md): real
// Prometheus and Alertmanager binaries, two vantage daemons in two
// locations sharding one set of checks, and the demo shop with a node fault.
// It proves the shipped Prometheus rules, the per-node series and the
// alert delivery end to end.
package fullstack

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
)

const (
	prometheusBin = "/usr/bin/prometheus"
	rulesFile     = "../deploy/prometheus/vantage-rules.yaml"

	// vantage's own alert rule. p90 by [check, path, node] rather than
	// node_slowdown: with --shard a daemon may own only one or two of a
	// check's three nodes, and node_slowdown needs two siblings in the
	// same daemon. Prometheus, which sees every shard, does the sibling
	// comparison (VantageLoadBalancerNodeDegraded).
	vantageAlert = "ShopNodeSlow"
	// Two of the shipped Prometheus alerts the fault trips.
	promAlert = "VantageLoadBalancerNodeDegraded"
	slowAlert = "VantageCheckSlow"

	// Fault, interval and timeout leave room for a loaded CI machine: the
	// healthy nodes may take a few hundred ms under -race, and lb2 must
	// still finish within the timeout and stay over 3× its siblings.
	faultLatency  = 2 * time.Second
	checkInterval = 3 * time.Second
	checkTimeout  = 2900 * time.Millisecond
)

// location is one vantage daemon of the test: a location and its shard.
type location struct {
	name  string
	shard probe.Shard
	d     *daemon.Daemon
	addr  string
}

func TestFullStack(t *testing.T) {
	promBin := testenv.Binary(t, prometheusBin, "prometheus")
	testenv.Binary(t, testenv.AlertmanagerBinary, "prometheus-alertmanager") // before anything starts
	// Everything below is bounded by this context and the eventually
	// timeouts; a typical run takes about 20s.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	start := time.Now()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	shop, err := demo.Start(ctx, demo.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatalf("starting the demo shop: %v", err)
	}
	t.Cleanup(func() { _ = shop.Close() })
	var lb2 string
	for _, n := range shop.Nodes() {
		if n.Name == "lb2" {
			lb2 = n.Name // the demo config's node_names label resolved nodes by name
		}
	}

	amURL := startAlertmanager(t)

	locs := []*location{
		{name: "ams1", shard: probe.Shard{Index: 0, Count: 2}},
		{name: "fra1", shard: probe.Shard{Index: 1, Count: 2}},
	}
	for _, l := range locs {
		startVantage(t, ctx, log, shop, l, amURL)
	}
	promURL := startPrometheus(t, promBin, locs, amURL)
	// A second Prometheus without native histograms negotiates OpenMetrics
	// (the first one scrapes protobuf): both encodings of /metrics must be
	// ingested by the real parser.
	classicURL := startClassicPrometheus(t, promBin, locs)
	t.Logf("stack up after %s: prometheus %s, alertmanager %s, vantage %s %s",
		time.Since(start).Round(time.Millisecond), promURL, amURL, locs[0].addr, locs[1].addr)

	// 1. Every target is probed exactly once across the two daemons.
	// The demo config: shop-home, -product, -search, -category (3 nodes each), app-checkout,
	// cdn-static, cdn-app-js, shop-dns (one target each), over 2 paths.
	// Nodes come from DNS (resolve: all), so the targets appear shortly
	// after Run.
	const wantTargets = (3 + 3 + 3 + 3 + 1 + 1 + 1 + 1) * 2
	var want map[string]string // target key -> location that owns it
	testenv.Eventually(t, 10*time.Second, "targets scheduled", func() error {
		want = map[string]string{}
		for _, l := range locs {
			for _, tg := range l.d.Scheduler().Targets() {
				if prev, dup := want[tg.Key]; dup {
					t.Fatalf("target %s scheduled in %s and %s", tg.Key, prev, l.name)
				}
				want[tg.Key] = l.name
			}
		}
		if len(want) != wantTargets {
			return fmt.Errorf("the shards hold %d targets together, want %d: %v", len(want), wantTargets, want)
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, "every target in Prometheus from exactly one location", func() error {
		res, err := promQuery(ctx, promURL, `vantage_check_runs_total`)
		if err != nil {
			return err
		}
		got := map[string]map[string]bool{}
		for _, s := range res {
			key := s.Metric["check"] + "/" + s.Metric["path"] + "/" + s.Metric["node"]
			if got[key] == nil {
				got[key] = map[string]bool{}
			}
			got[key][s.Metric["location"]] = true
		}
		for key, ls := range got {
			if len(ls) != 1 {
				t.Fatalf("target %s probed from %d locations %v, want exactly one", key, len(ls), slices.Sorted(maps.Keys(ls)))
			}
			if _, ok := want[key]; !ok {
				t.Fatalf("Prometheus has target %s, which no shard owns", key)
			}
			if loc := slices.Collect(maps.Keys(ls))[0]; loc != want[key] {
				t.Fatalf("target %s probed from %s, but its shard runs in %s", key, loc, want[key])
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d of %d targets in Prometheus", len(got), len(want))
		}
		return nil
	})
	for key, loc := range want {
		i := slices.IndexFunc(locs, func(l *location) bool { return l.name == loc })
		if !locs[i].shard.Owns(key) {
			t.Errorf("target %s runs in %s, whose shard %v does not own it", key, loc, locs[i].shard)
		}
	}

	// Native histograms arrive (Prometheus returns them as "histogram").
	testenv.Eventually(t, 15*time.Second, "native histograms in Prometheus", func() error {
		res, err := promQuery(ctx, promURL, `vantage_check_duration_seconds{check="shop-home"}`)
		if err != nil {
			return err
		}
		if len(res) != 6 {
			// The histogram counts successful runs only: say what the runs did.
			runs, _ := promQuery(ctx, promURL, `sum by (location, path, node, result) (vantage_check_runs_total{check="shop-home"})`)
			return fmt.Errorf("%d shop-home duration series, want 6 (3 nodes × 2 paths); runs: %v", len(res), runs)
		}
		for _, s := range res {
			if s.Histogram == nil {
				return fmt.Errorf("series %v is not a native histogram", s.Metric)
			}
		}
		return nil
	})

	// The OpenMetrics scrape: classic buckets, the summary's quantiles and
	// every target, with both daemons up.
	testenv.Eventually(t, 15*time.Second, "OpenMetrics scrape ingested by Prometheus", func() error {
		for q, n := range map[string]int{
			`up{job="vantage"} == 1`: 2,
			`vantage_check_duration_seconds_bucket{check="shop-home",le="+Inf"}`:                    6,
			`vantage_check_duration_seconds_bucket{check="shop-home",le="0.005"}`:                   6,
			`vantage_check_duration_quantile_seconds{check="shop-home",window="1m",quantile="0.9"}`: 6,
			`vantage_check_runs_total{result="success"}`:                                            wantTargets,
		} {
			res, err := promQuery(ctx, classicURL, q)
			if err != nil {
				return err
			}
			if len(res) != n {
				return fmt.Errorf("%s: %d series, want %d", q, len(res), n)
			}
		}
		return nil
	})

	// Baseline before the fault. No absolute bound: under -race on a busy
	// two-core CI machine loopback HTTPS runs take up to a few hundred ms,
	// which is why the fault is large and the asserts are relative.
	p90 := `vantage_check_duration_quantile_seconds{check="shop-home",window="1m",quantile="0.9"}`
	var lb2Before float64
	testenv.Eventually(t, 10*time.Second, "baseline quantiles per node", func() error {
		res, err := promQuery(ctx, promURL, p90)
		if err != nil {
			return err
		}
		if len(res) != 6 {
			return fmt.Errorf("%d shop-home p90 series, want 6 (3 nodes × 2 paths)", len(res))
		}
		for _, s := range res {
			if s.Metric["node"] == lb2 {
				lb2Before = max(lb2Before, s.Float())
			}
		}
		return nil
	})
	t.Logf("baseline: lb2 p90 %.1fms", lb2Before*1000)

	// 2. The fault: lb2 answers faultLatency late.
	if err := shop.SetFault("lb2", demo.Fault{Latency: demo.Duration(faultLatency)}); err != nil {
		t.Fatal(err)
	}
	faultAt := time.Now()

	// Per-node quantiles: lb2's p90 rises by the fault (it is added to
	// every response), its siblings stay well below (what the alerts need).
	testenv.Eventually(t, 20*time.Second, "lb2's p90 rises in Prometheus, its siblings' do not", func() error {
		return slowNode(ctx, promURL, p90, lb2, faultLatency.Seconds()*0.99, lb2Before)
	})
	t.Logf("lb2 p90 up %s after the fault", time.Since(faultAt).Round(time.Millisecond))

	// The shipped recording rule (native-histogram branch: Prometheus here
	// stores no classic buckets) sees the same across both locations. Native
	// buckets grow by ≤10% (factor 1.1), hence the looser bound.
	testenv.Eventually(t, 15*time.Second, "recorded per-node p90 across locations", func() error {
		return slowNode(ctx, promURL, `check_path_node:vantage_check_duration_seconds:p90_rate5m{check="shop-home"}`,
			lb2, faultLatency.Seconds()*0.85, lb2Before)
	})

	// 3. The shipped Prometheus alerts fire. VantageLoadBalancerNodeDegraded:
	// for lb2 and nothing else, one instance per check and path that has
	// lb2 (the four shop-* pages), without location (it compares nodes
	// across every location and shard). VantageCheckSlow (p99 > 1.5s): per
	// target, labelled with the location that probes it.
	var lb2Targets []string // sorted, as the comparison below needs
	for _, check := range []string{"shop-category", "shop-home", "shop-product", "shop-search"} {
		lb2Targets = append(lb2Targets, check+"/alt-source/"+lb2, check+"/direct/"+lb2)
	}
	nLB2 := len(lb2Targets)
	byLocation := map[string][]string{} // location -> its lb2 targets
	for _, key := range lb2Targets {
		byLocation[want[key]] = append(byLocation[want[key]], key)
	}
	testenv.Eventually(t, 20*time.Second, "Prometheus alerts firing", func() error {
		res, err := promQuery(ctx, promURL, `ALERTS{alertstate="firing"}`)
		if err != nil {
			return err
		}
		var degraded []string
		slow := map[string][]string{}
		for _, s := range res {
			key := s.Metric["check"] + "/" + s.Metric["path"] + "/" + s.Metric["node"]
			switch s.Metric["alertname"] {
			case promAlert:
				degraded = append(degraded, key)
			case slowAlert:
				slow[s.Metric["location"]] = append(slow[s.Metric["location"]], key)
			}
		}
		sort.Strings(degraded)
		if !slices.Equal(degraded, lb2Targets) {
			return fmt.Errorf("%s firing for %v, want %v", promAlert, degraded, lb2Targets)
		}
		return containsPerLocation(slow, byLocation)
	})
	t.Logf("Prometheus alerts firing %s after the fault", time.Since(faultAt).Round(time.Millisecond))

	// 4. Alertmanager has vantage's own alerts and Prometheus' alerts,
	// grouped by [alertname, location]: one group per location for
	// vantage's alert and for VantageCheckSlow (each holding only that
	// location's alerts), one location-less group for the degraded node.
	testenv.Eventually(t, 20*time.Second, "alerts grouped in Alertmanager", func() error {
		var alerts []amAlert
		if err := getJSON(ctx, amURL+"/api/v2/alerts?active=true", &alerts); err != nil {
			return err
		}
		count := map[string]int{}
		for _, a := range alerts {
			name := a.Labels["alertname"]
			count[name]++
			if (name == vantageAlert || name == promAlert) && a.Labels["node"] != lb2 {
				t.Fatalf("%s for node %q in Alertmanager, but only lb2 (%s) is faulty: %v", name, a.Labels["node"], lb2, a.Labels)
			}
		}
		if count[vantageAlert] != nLB2 || count[promAlert] != nLB2 || count[slowAlert] < nLB2 {
			return fmt.Errorf("alerts by name %[1]v, want %[2]d of %[3]s (vantage), %[2]d of %[4]s and at least %[2]d of %[5]s (Prometheus)",
				count, nLB2, vantageAlert, promAlert, slowAlert)
		}

		var groups []amGroup
		if err := getJSON(ctx, amURL+"/api/v2/alerts/groups", &groups); err != nil {
			return err
		}
		perLocation := map[string]map[string][]string{vantageAlert: {}, slowAlert: {}}
		promGroups := 0
		for _, g := range groups {
			name := g.Labels["alertname"]
			switch name {
			case vantageAlert, slowAlert:
				loc := g.Labels["location"]
				for _, a := range g.Alerts {
					if a.Labels["location"] != loc {
						t.Fatalf("group %v holds an alert from %q", g.Labels, a.Labels["location"])
					}
					if a.Annotations["summary"] == "" {
						t.Errorf("%s alert without summary: %v", name, a)
					}
					perLocation[name][loc] = append(perLocation[name][loc], a.Labels["check"]+"/"+a.Labels["path"]+"/"+a.Labels["node"])
				}
			case promAlert:
				promGroups++
				if _, ok := g.Labels["location"]; ok || len(g.Labels) != 1 {
					t.Fatalf("%s group labels %v, want only alertname (the alert spans locations)", name, g.Labels)
				}
				if len(g.Alerts) != nLB2 {
					return fmt.Errorf("%s group has %d alerts, want %d", name, len(g.Alerts), nLB2)
				}
				for _, a := range g.Alerts {
					if !strings.Contains(a.Annotations["summary"], lb2) || a.Annotations["runbook_url"] == "" {
						t.Errorf("%s annotations %v: want a summary naming %s and a runbook_url", name, a.Annotations, lb2)
					}
				}
			default:
				t.Logf("other alert group %v (%d alerts)", g.Labels, len(g.Alerts))
			}
		}
		if promGroups != 1 {
			return fmt.Errorf("%d %s groups, want 1", promGroups, promAlert)
		}
		// vantage's own alert: exactly the lb2 targets, each in its location.
		got := perLocation[vantageAlert]
		for loc := range got {
			sort.Strings(got[loc])
		}
		if !maps.EqualFunc(got, byLocation, slices.Equal[[]string]) {
			return fmt.Errorf("%s groups by location %v, want %v", vantageAlert, got, byLocation)
		}
		return containsPerLocation(perLocation[slowAlert], byLocation)
	})
	t.Logf("alerts grouped in Alertmanager %s after the fault; total %s", time.Since(faultAt).Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
}

// startAlertmanager runs Alertmanager grouping by [alertname, location]
// with short waits, clustering off (it would listen on 0.0.0.0:9094).
func startAlertmanager(t *testing.T) string {
	return testenv.Alertmanager(t, `route:
  receiver: "null"
  group_by: [alertname, location]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
`)
}

// startPrometheus scrapes every location each second, evaluates the
// shipped rules each second and alerts to amURL.
func startPrometheus(t *testing.T, bin string, locs []*location, amURL string) string {
	dir := t.TempDir()
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped `for:` values are production durations (1m); the test
	// loads a copy with `for: 1s` so alerts fire within seconds. The
	// expressions are the shipped ones, byte for byte. (keep_firing_for
	// does not match: the pattern wants `for:` first on its line.)
	short := regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(rules, []byte("${1}for: 1s"))
	if !strings.Contains(string(short), "for: 1s") {
		t.Fatal("no `for:` rewritten in the rules copy; has the rules file's layout changed?")
	}
	writeFile(t, filepath.Join(dir, "vantage-rules.yaml"), string(short))

	// Prometheus 2.x ingests native histograms only with this feature
	// flag (it then scrapes protobuf); 3.x ignores the retired flag.
	return runPrometheus(t, bin, "prometheus", dir, locs, fmt.Sprintf(`  evaluation_interval: 1s
rule_files: [vantage-rules.yaml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
`, strings.TrimPrefix(amURL, "http://")), "--enable-feature=native-histograms")
}

// startClassicPrometheus scrapes every location each second without the
// native-histograms feature, so it asks for OpenMetrics.
func startClassicPrometheus(t *testing.T, bin string, locs []*location) string {
	return runPrometheus(t, bin, "prometheus-classic", t.TempDir(), locs, "")
}

// runPrometheus starts a Prometheus in dir scraping every location each
// second. extra goes right after the global scrape settings (more global
// settings, then top-level keys such as rule_files); flags are added to
// the command line. It returns the server's URL.
func runPrometheus(t *testing.T, bin, name, dir string, locs []*location, extra string, flags ...string) string {
	var targets []string
	for _, l := range locs {
		targets = append(targets, fmt.Sprintf("%q", l.addr))
	}
	conf := filepath.Join(dir, "prometheus.yml")
	writeFile(t, conf, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
%sscrape_configs:
  - job_name: vantage
    static_configs:
      - targets: [%s]
`, extra, strings.Join(targets, ", ")))
	addr := testenv.FreeAddr(t)
	testenv.StartProcess(t, name, bin, "http://"+addr+"/-/ready", append([]string{
		"--config.file=" + conf,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn"}, flags...)...)
	return "http://" + addr
}

// startVantage runs one daemon for l on a loopback port until the test
// ends: the demo shop's checks every checkInterval, its own alert to Alertmanager.
func startVantage(t *testing.T, ctx context.Context, log zerolog.Logger, shop *demo.Shop, l *location, amURL string) {
	t.Helper()
	dir := t.TempDir()
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{
		Interval: checkInterval, Timeout: checkTimeout, Location: l.name, NoAlerts: true,
	}) + fmt.Sprintf(`
notifiers:
  - name: am
    type: alertmanager
    url: %s
alerts:
  - name: %s
    checks: ["shop-*"]
    when: p90 > 1500ms
    window: 30s
    for: 2s
    by: [check, path, node]
    severity: page
    annotations:
      summary: "{{ .check }} p90 {{ .value }} via {{ .path }} node {{ .node }}"
    notify: [am]
`, amURL, vantageAlert)
	conf := filepath.Join(dir, "vantage.yaml")
	writeFile(t, conf, cfg)

	log = log.With().Str("location", l.name).Logger()
	d, err := daemon.New(daemon.Options{
		ConfigFile: conf, StoragePath: filepath.Join(dir, "data"), Shard: l.shard, Logger: log,
		EvalInterval: 500 * time.Millisecond,
		// No browser: the demo config here has no journey.
		Kinds:     kinds.Registry(),
		Probers:   kinds.Probers(log, nil),
		Notifiers: kinds.Notifiers(),
	})
	if err != nil {
		t.Fatalf("%s: daemon.New: %v", l.name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.d, l.addr = d, ln.Addr().String()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", l.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return within 10s", l.name)
		}
	})
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// slowNode checks an instant query of per-node latency series: every
// series of node is at least min and rose from before; every other node
// is under a third of node's fastest series (the degraded-node ratio).
func slowNode(ctx context.Context, promURL, query, node string, min, before float64) error {
	res, err := promQuery(ctx, promURL, query)
	if err != nil {
		return err
	}
	if len(res) != 6 {
		up, _ := promQuery(ctx, promURL, `up or scrape_duration_seconds`)
		return fmt.Errorf("%d series, want 6 (3 nodes × 2 paths): %v; scrapes: %v", len(res), res, up)
	}
	slowest := math.Inf(1)
	var others float64
	n := 0
	for _, s := range res {
		if s.Metric["node"] == node {
			n++
			slowest = math.Min(slowest, s.Float())
		} else {
			others = math.Max(others, s.Float())
		}
	}
	switch {
	case n != 2:
		return fmt.Errorf("%d series for node %s, want 2 (one per path): %v", n, node, res)
	case slowest < min || slowest <= before:
		return fmt.Errorf("node %s at %.3fs (before the fault %.3fs), want ≥ %.3fs", node, slowest, before, min)
	case others*3 >= slowest:
		return fmt.Errorf("node %s at %.3fs, but a healthy node at %.3fs (want under a third)", node, slowest, others)
	}
	return nil
}

// containsPerLocation reports whether got holds, for every location of
// want, all of its targets. VantageCheckSlow is checked this loosely: on a
// loaded machine one slow run can push a healthy target's p99 over 1.5s.
func containsPerLocation(got, want map[string][]string) error {
	for loc, keys := range want {
		for _, k := range keys {
			if !slices.Contains(got[loc], k) {
				return fmt.Errorf("%s: no %s alert for %s from %s (have %v)", slowAlert, slowAlert, k, loc, got)
			}
		}
	}
	return nil
}
