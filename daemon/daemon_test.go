package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/web"
)

// TestDemoShopEveryNodeEveryPath is the "Done when": the daemon on
// the demo config probes www.shop.test on all three nodes over both paths,
// every demo target succeeds, and the exposition passes promtool.
func TestDemoShopEveryNodeEveryPath(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	cfg := writeConfig(t, shop.ConfigWithOptions(demo.ConfigOptions{Interval: 1500 * time.Millisecond, Timeout: 1200 * time.Millisecond}))
	r := startDaemon(t, daemon.Options{ConfigFile: cfg})

	for _, p := range []string{"/-/healthy", "/-/ready"} {
		if code, body := r.do(t, http.MethodGet, p, nil); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}

	// The demo config over 2 paths: shop-home, -product, -search and -category on www's 3
	// nodes, app-checkout on api's single node, and 3 node-less checks.
	const wantTargets = (3 + 3 + 3 + 3 + 1 + 3) * 2
	// Timing-tolerant: wait (generously, since `make test` runs every
	// package at once) for a state where each target has succeeded and
	// shop-home's last run is a success everywhere.
	var e exposition
	testenv.Eventually(t, 30*time.Second, "", func() error {
		if n := len(r.d.Scheduler().Targets()); n != wantTargets {
			var keys []string
			for _, tg := range r.d.Scheduler().Targets() {
				keys = append(keys, tg.Key)
			}
			return fmt.Errorf("%d targets, want %d: %v", n, wantTargets, keys)
		}
		e = r.scrape(t)
		var missing []string
		for _, tg := range r.d.Scheduler().Targets() {
			v, _ := e.value(t, "vantage_check_runs_total", lbl("check", tg.Check.Name, "path", tg.Path.Name(),
				"node", tg.Node.Label(), "result", "success"))
			if v < 1 {
				missing = append(missing, tg.Key)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no successful run yet for %v", missing)
		}
		for _, path := range shopPaths {
			for _, node := range demoNodes {
				want := lbl("check", "shop-home", "type", "http", "path", path, "node", node, "location", "demo", "route", "home")
				for _, name := range []string{"vantage_check_success", "vantage_check_up"} {
					if v, ok := e.value(t, name, want); !ok || v != 1 {
						return fmt.Errorf("%s%v = %v (present %v), want 1", name, want, v, ok)
					}
				}
				// check_up alone carries the address behind the name.
				addr := shopNodes[slices.Index(demoNodes, node)]
				if v, ok := e.value(t, "vantage_check_up", lbl("check", "shop-home", "path", path, "node", node, "node_address", addr)); !ok || v != 1 {
					return fmt.Errorf("vantage_check_up for node %s has no node_address %s", node, addr)
				}
			}
		}
		return nil
	})

	for _, path := range shopPaths {
		for _, node := range demoNodes {
			want := lbl("check", "shop-home", "path", path, "node", node)
			if _, n, ok := e.hist(t, "vantage_check_duration_seconds", want); !ok || n == 0 {
				t.Errorf("vantage_check_duration_seconds%v: count %d (present %v), want > 0", want, n, ok)
			}
			for _, phase := range []string{"dns", "connect", "tls", "processing", "transfer"} {
				w := lbl("check", "shop-home", "path", path, "node", node, "phase", phase)
				if _, ok := e.value(t, "vantage_http_phase_seconds", w); !ok && phase != "dns" {
					t.Errorf("no vantage_http_phase_seconds%v", w)
				}
			}
			if v, ok := e.value(t, "vantage_http_status_code", lbl("check", "shop-home", "path", path, "node", node)); !ok || v != 200 {
				t.Errorf("vantage_http_status_code for %s/%s = %v (present %v), want 200", path, node, v, ok)
			}
			if v, ok := e.value(t, "vantage_tls_cert_not_after_timestamp_seconds", lbl("check", "shop-home", "path", path, "node", node)); !ok || v < float64(time.Now().Unix()) {
				t.Errorf("vantage_tls_cert_not_after_timestamp_seconds for %s/%s = %v (present %v), want a future time", path, node, v, ok)
			}
		}
	}
	if got := e.nodesOf("vantage_check_success", lbl("check", "shop-home")); !slices.Equal(got, demoNodes) {
		t.Errorf("shop-home nodes %v, want %v", got, demoNodes)
	}
	for _, name := range []string{"vantage_build_info", "vantage_config_last_reload_successful",
		"vantage_scheduler_start_delay_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if len(e.series(name, nil)) == 0 {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if v, _ := e.value(t, "vantage_config_last_reload_successful", nil); v != 1 {
		t.Errorf("vantage_config_last_reload_successful = %v, want 1", v)
	}

	t.Run("promtool", func(t *testing.T) { promtoolCheck(t, e.text) })
}

// promtoolCheck runs `promtool check metrics` on an exposition and fails on
// any problem it reports.
func promtoolCheck(t *testing.T, text string) {
	bin := testenv.LookPath(t, "promtool", "prometheus")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// shopHome is a check on www.shop.test's home page over every node.
func shopHome(shop *demo.Shop, name string) string {
	return fmt.Sprintf(`  - name: %s
    type: http
    url: %s
    nodes: {resolve: all}
    labels: {route: home}
    expect:
      status: [200]
      body_contains: ["Add to cart"]
`, name, shop.URL(demo.WWWHost, "/"))
}

// TestLatencyOnOneNodeShowsOnlyOnThatNode is the headline
// acceptance test: latency injected on lb2 shows in lb2's series on both
// paths while lb1 and lb3 stay fast.
func TestLatencyOnOneNodeShowsOnlyOnThatNode(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	cfg := writeConfig(t, shopConfig(shop, time.Second, 950*time.Millisecond, shopHome(shop, "shop-home")))
	r := startDaemon(t, daemon.Options{ConfigFile: cfg})

	// Baseline: every node has succeeded.
	var before exposition
	testenv.Eventually(t, 20*time.Second, "", func() error {
		before = r.scrape(t)
		for _, path := range shopPaths {
			for _, node := range shopNodes {
				if _, n, _ := before.hist(t, "vantage_check_duration_seconds", lbl("check", "shop-home", "path", path, "node", node)); n < 1 {
					return fmt.Errorf("%s/%s: no successful run yet", path, node)
				}
			}
		}
		return nil
	})

	setFault(t, shop, "lb2:latency=400ms,latency_ratio=1")
	const lb2 = "127.0.0.12"
	// The window since the fault: lb2's runs are all slow (but for one that
	// may have straddled the fault), the other nodes' mostly fast. Timing is
	// judged by the duration histogram's 250ms bucket and the last run's
	// processing phase, so a machine busy with other tests does not turn a
	// fast node slow for long enough to fail this.
	testenv.Eventually(t, 30*time.Second, "", func() error {
		after := r.scrape(t)
		for _, path := range shopPaths {
			for _, node := range shopNodes {
				w := lbl("check", "shop-home", "path", path, "node", node)
				fast0, n0 := before.histBelow(t, "vantage_check_duration_seconds", w, 0.25)
				fast1, n1 := after.histBelow(t, "vantage_check_duration_seconds", w, 0.25)
				runs, fast := n1-n0, fast1-fast0
				proc, _ := after.value(t, "vantage_http_phase_seconds", lbl("check", "shop-home", "path", path, "node", node, "phase", "processing"))
				if runs < 3 {
					return fmt.Errorf("%s/%s: %d successful runs since the fault, want 3", path, node, runs)
				}
				if node == lb2 {
					if proc < 0.35 || fast > 1 {
						return fmt.Errorf("%s/lb2: last processing %.3fs (want > 0.35s), %d of %d runs under 250ms (want <= 1)", path, proc, fast, runs)
					}
					continue
				}
				if proc > 0.3 || fast*2 < runs {
					return fmt.Errorf("%s/%s: last processing %.3fs (want < 0.3s), %d of %d runs under 250ms (want most): only lb2 is slow", path, node, proc, fast, runs)
				}
				if v, _ := after.value(t, "vantage_check_success", w); v != 1 {
					return fmt.Errorf("%s/%s: vantage_check_success = %v, want 1", path, node, v)
				}
			}
		}
		return nil
	})
}

// TestNodeRemovedFromDNSLosesItsSeries: a node gone from DNS is dropped at
// the next re-resolve, with every one of its series.
func TestNodeRemovedFromDNSLosesItsSeries(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	const interval = 700 * time.Millisecond
	cfg := writeConfig(t, shopConfig(shop, interval, 600*time.Millisecond, shopHome(shop, "shop-home")))
	r := startDaemon(t, daemon.Options{ConfigFile: cfg})

	const lb3 = "127.0.0.13"
	testenv.Eventually(t, 20*time.Second, "", func() error {
		e := r.scrape(t)
		if got := e.nodesOf("vantage_http_phase_seconds", lbl("check", "shop-home")); !slices.Equal(got, shopNodes) {
			return fmt.Errorf("nodes with phase series %v, want %v", got, shopNodes)
		}
		return nil
	})
	setFault(t, shop, "lb3:dns_remove")

	hasLB3 := func(e exposition) []string {
		var found []string
		for name := range e.fams {
			for _, m := range e.series(name, lbl("node", lb3)) {
				found = append(found, fmt.Sprintf("%s%v", name, labelsOf(m)))
			}
		}
		return found
	}
	testenv.Eventually(t, 10*time.Second, "", func() error {
		if found := hasLB3(r.scrape(t)); len(found) > 0 {
			return fmt.Errorf("%d series still carry node=%s, e.g. %s", len(found), lb3, found[0])
		}
		return nil
	})
	if n := len(r.d.Scheduler().Targets()); n != 4 {
		t.Errorf("%d targets after removing lb3, want 4", n)
	}

	// It stays gone (no in-flight run brings it back) while the others go on.
	before := r.scrape(t)
	time.Sleep(2 * interval)
	testenv.Eventually(t, 10*time.Second, "", func() error {
		after := r.scrape(t)
		if found := hasLB3(after); len(found) > 0 {
			t.Fatalf("lb3 series came back: %v", found)
		}
		for _, path := range shopPaths {
			for _, node := range shopNodes[:2] {
				w := lbl("check", "shop-home", "path", path, "node", node)
				if v0, v1 := sumOf(before, "vantage_check_runs_total", w), sumOf(after, "vantage_check_runs_total", w); v1 < v0+2 {
					return fmt.Errorf("%s/%s: runs %v -> %v, want two more", path, node, v0, v1)
				}
			}
		}
		return nil
	})

	// Back in DNS: probed again.
	setFault(t, shop, "lb3:clear")
	testenv.Eventually(t, 10*time.Second, "", func() error {
		if got := r.scrape(t).nodesOf("vantage_check_success", lbl("check", "shop-home")); !slices.Equal(got, shopNodes) {
			return fmt.Errorf("nodes %v, want %v", got, shopNodes)
		}
		return nil
	})
}

// TestStalledNodeTimesOutAndRefusedNodeErrors: a node that never answers is
// cut off at the timeout and counted as timeout; a refused one as error.
func TestStalledNodeTimesOutAndRefusedNodeErrors(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	setFault(t, shop, "lb1:stall")
	setFault(t, shop, "lb2:refuse")
	cfg := writeConfig(t, shopConfig(shop, time.Second, 500*time.Millisecond, shopHome(shop, "shop-home")))
	r := startDaemon(t, daemon.Options{ConfigFile: cfg})

	// node -> the result it must report, and results it must never report
	// (a healthy node may still time out on a machine busy with other tests).
	want := map[string]struct {
		result string
		never  []string
	}{
		"127.0.0.11": {"timeout", []string{"success", "failure", "error"}},
		"127.0.0.12": {"error", []string{"success", "failure"}},
		"127.0.0.13": {"success", []string{"failure", "error"}},
	}
	testenv.Eventually(t, time.Minute, "every node's expected result", func() error {
		e := r.scrape(t)
		for _, path := range shopPaths {
			for node, w := range want {
				runs := func(res string) float64 {
					v, _ := e.value(t, "vantage_check_runs_total", lbl("check", "shop-home", "path", path, "node", node, "result", res))
					return v
				}
				if len(e.series("vantage_check_runs_total", lbl("check", "shop-home", "path", path, "node", node))) != 4 {
					return fmt.Errorf("%s/%s: no run yet", path, node)
				}
				for _, res := range w.never {
					if v := runs(res); v != 0 {
						t.Fatalf("%s/%s: %v runs with result %s, want %s", path, node, v, res, w.result)
					}
				}
				if v := runs(w.result); v < 2 {
					return fmt.Errorf("%s/%s: %v runs with result %s, want >= 2", path, node, v, w.result)
				}
				if w.result != "success" {
					if s, _ := e.value(t, "vantage_check_success", lbl("check", "shop-home", "path", path, "node", node)); s != 0 {
						t.Fatalf("%s/%s: vantage_check_success %v, want 0", path, node, s)
					}
				}
			}
		}
		return nil
	})
	// A stalled run is cut at the check's timeout and says so. (Whether a
	// run is skipped depends on how busy the machine is, not on the stall.)
	code, body := r.do(t, "GET", "/api/v1/checks", nil)
	var doc struct {
		Data struct{ Checks []web.CheckStatus }
	}
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
		t.Fatalf("/api/v1/checks: %d %v", code, err)
	}
	stalled := 0
	for _, c := range doc.Data.Checks {
		if c.Node != "127.0.0.11" {
			continue
		}
		stalled++
		if c.LastResult != "timeout" || !strings.Contains(c.LastReason, "timeout after 500ms") {
			t.Errorf("%s: last run %s %q, want a timeout after 500ms", c.Target, c.LastResult, c.LastReason)
		}
	}
	if stalled != len(shopPaths) {
		t.Errorf("%d targets on the stalled node, want %d", stalled, len(shopPaths))
	}
}

// TestBrokenPathFailsAloneWithAClearError: a path whose source address or
// interface does not exist fails its own runs with a clear reason; the other
// path keeps working.
func TestBrokenPathFailsAloneWithAClearError(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	cfg := fmt.Sprintf(`global: {interval: 1s, timeout: 800ms}
paths:
  - name: direct
    resolver: %[1]s
    tls: {ca_file: %[2]q}
  - name: no-such-source
    source_ip: 192.0.2.77
    resolver: %[1]s
    tls: {ca_file: %[2]q}
  - name: no-such-interface
    interface: vantage-nope0
    resolver: %[1]s
    tls: {ca_file: %[2]q}
checks:
  - name: home
    type: http
    url: %[3]s
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}]}
`, shop.DNSAddr(), shop.CAFile(), shop.URL(demo.WWWHost, "/"))
	r := startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg)})
	want := map[string]string{"direct": "success", "no-such-source": "error", "no-such-interface": "error"}
	testenv.Eventually(t, 20*time.Second, "", func() error {
		e := r.scrape(t)
		for path, res := range want {
			if v, _ := e.value(t, "vantage_check_runs_total", lbl("check", "home", "path", path, "result", res)); v < 2 {
				return fmt.Errorf("%s: %v %s runs, want >= 2", path, v, res)
			}
		}
		return nil
	})
	reasons := map[string]string{"no-such-source": "192.0.2.77", "no-such-interface": "vantage-nope0"}
	for _, tg := range r.d.Scheduler().Targets() {
		out := probe.RunOnce(t.Context(), kinds.Probers(testLogger(t), nil)["http"], tg)
		if want, ok := reasons[tg.Path.Name()]; ok && (out.Result != probe.Error || !strings.Contains(out.Reason, want)) {
			t.Errorf("%s: %s %q, want an error naming %s", tg.Key, out.Result, out.Reason, want)
		}
		t.Logf("%s: %s %s", tg.Key, out.Result, out.Reason)
	}
}
