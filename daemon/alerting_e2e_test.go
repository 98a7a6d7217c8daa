package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testdaemon"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
)

// lb2 is the node the tests slow down; its label is the name the demo
// config's node_names give its address, lb2Addr.
const (
	lb2     = "lb2"
	lb2Addr = "127.0.0.12"
)

// nodeRule is a LoadBalancerNodeDegraded rule on node_slowdown with
// windows short enough for a test. keepFiring rides out a p90 ratio that
// dips under the threshold for an evaluation or two on a loaded machine.
func nodeRule(window, forDur, keepFiring time.Duration) string {
	return fmt.Sprintf(`
alerts:
  - name: LoadBalancerNodeDegraded
    when: node_slowdown > 3
    window: %s
    for: %s
    keep_firing_for: %s
    by: [node]
    severity: page
    annotations:
      summary: "load-balancer node {{ .node }} is {{ .value }}x slower than its siblings"
`, durYAML(window), durYAML(forDur), durYAML(keepFiring))
}

func durYAML(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// alertsOf flattens received webhook messages into their alerts, in order.
func alertsOf(msgs []webhook.Message) []webhook.Alert {
	var out []webhook.Alert
	for _, m := range msgs {
		out = append(out, m.Alerts...)
	}
	return out
}

func describe(as []webhook.Alert) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n  %s %s node=%s fired_count=%s flapping=%q resolution=%q", a.Status, a.Labels["alertname"],
			a.Labels["node"], a.Annotations["fired_count"], a.Annotations["flapping"], a.Annotations["resolution"])
	}
	return b.String()
}

// forNode keeps the alerts about node.
func forNode(as []webhook.Alert, node string) []webhook.Alert {
	var out []webhook.Alert
	for _, a := range as {
		if a.Labels["node"] == node {
			out = append(out, a)
		}
	}
	return out
}

// waitAlerts waits until the receiver holds n alerts about node and
// returns them.
func waitAlerts(t *testing.T, rcv *demo.Receiver, node string, n int, timeout time.Duration) []webhook.Alert {
	t.Helper()
	var got []webhook.Alert
	testenv.Eventually(t, timeout, "", func() error {
		got = forNode(alertsOf(rcv.Messages()), node)
		if len(got) < n {
			return fmt.Errorf("%d notifications, want %d:%s", len(got), n, describe(got))
		}
		return nil
	})
	return got
}

// TestNodeFaultPagesOnceResolvesOnceThenFlaps is issue 5's "Done when"
// through the whole daemon: demo shop, real storage, the demo webhook
// receiver. A slow node pages once, naming the node; clearing it sends one
// resolved notice saying how long it fired; the third episode in the flap
// window is marked flapping; and only the slow node ever pages.
func TestNodeFaultPagesOnceResolvesOnceThenFlaps(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	rcv := startReceiver(t)
	// node_slowdown > 3 is a ratio of p90s, and a loaded CI machine adds
	// up to a few hundred ms to a run under -race (p90s of 200–300 ms were
	// seen on 2 busy cores). Every www node therefore answers in 300ms, so
	// a healthy node reads 3× only when its p90 gains 600ms more than its
	// sibling's; lb2's own fault replaces that with 2.2s, which stays over
	// 3× its sibling until that sibling's p90 gains 430ms. A 3s interval
	// fits the slow runs, a 24s window holds 8 runs per node, and one path
	// halves the probing.
	const interval = 3 * time.Second
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: interval, Timeout: interval - 100*time.Millisecond,
		WebhookURL: rcv.URL(), NoAlerts: true, NoAltPath: true}) + nodeRule(8*interval, 3*time.Second, 3*time.Second)
	r := startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg), StoragePath: t.TempDir(),
		Notifiers: kinds.Notifiers(), EvalInterval: 500 * time.Millisecond, ExternalURL: "http://vantage.test"})

	setFault(t, shop, "www.shop.test:latency=300ms")
	// A few runs of every node with the base latency, then no page yet.
	testenv.Eventually(t, 2*time.Minute, "4 runs of each shop-home node", func() error {
		e := r.scrape(t)
		for _, n := range []string{"lb1", lb2, "lb3"} {
			if v := sumOf(e, "vantage_check_runs_total", lbl("check", "shop-home", "node", n, "result", "success")); v < 4 {
				return fmt.Errorf("%s: %v successful runs", n, v)
			}
		}
		return nil
	})
	if got := forNode(alertsOf(rcv.Messages()), lb2); len(got) != 0 {
		t.Fatalf("notifications before any fault:%s", describe(got))
	}

	start := time.Now()
	for episode := 1; episode <= 3; episode++ {
		setFault(t, shop, "lb2:latency=2200ms")
		injected := time.Now()
		got := waitAlerts(t, rcv, lb2, 2*episode-1, 2*time.Minute)
		fire := got[2*episode-2]
		t.Logf("episode %d: firing after %s", episode, time.Since(injected).Round(100*time.Millisecond))
		if fire.Status != "firing" || fire.Labels["alertname"] != "LoadBalancerNodeDegraded" || fire.Labels["node"] != lb2 {
			t.Fatalf("episode %d: want LoadBalancerNodeDegraded firing for node %s, got:%s", episode, lb2, describe(got))
		}
		if want := "load-balancer node " + lb2 + " is "; !strings.HasPrefix(fire.Annotations["summary"], want) {
			t.Errorf("summary %q, want it to start %q", fire.Annotations["summary"], want)
		}
		if fire.Annotations["fired_count"] != fmt.Sprint(episode) {
			t.Errorf("episode %d: fired_count %q", episode, fire.Annotations["fired_count"])
		}
		if flapping := fire.Annotations["flapping"] == "true"; flapping != (episode >= 2) {
			t.Errorf("episode %d: flapping=%q", episode, fire.Annotations["flapping"])
		}
		if fire.GeneratorURL == "" || !strings.HasPrefix(fire.GeneratorURL, "http://vantage.test/") {
			t.Errorf("generatorURL %q", fire.GeneratorURL)
		}

		// Still slow for another run and a few more evaluations: no
		// second page.
		time.Sleep(interval)
		setFault(t, shop, "lb2:clear")
		cleared := time.Now()
		got = waitAlerts(t, rcv, lb2, 2*episode, 2*time.Minute)
		if len(got) != 2*episode {
			t.Fatalf("episode %d: want exactly one page and one resolved notice, got:%s", episode, describe(got))
		}
		res := got[2*episode-1]
		t.Logf("episode %d: resolved after clearing in %s: %s", episode, time.Since(cleared).Round(100*time.Millisecond), res.Annotations["resolution"])
		if res.Status != "resolved" || res.Labels["node"] != lb2 {
			t.Fatalf("episode %d: want resolved for node %s, got:%s", episode, lb2, describe(got))
		}
		wantTimes := map[int]string{1: "once", 2: "2 times", 3: "3 times"}[episode]
		if r := res.Annotations["resolution"]; !strings.HasPrefix(r, "resolved after ") ||
			!strings.HasSuffix(r, "; fired "+wantTimes+" in the last hour") {
			t.Errorf("episode %d: resolution %q, want \"resolved after …; fired %s in the last hour\"", episode, r, wantTimes)
		}
		if res.Annotations["first_fired_at"] != got[0].Annotations["first_fired_at"] || res.Annotations["first_fired_at"] == "" {
			t.Errorf("first_fired_at %q, want the first episode's %q", res.Annotations["first_fired_at"], got[0].Annotations["first_fired_at"])
		}
		if !res.EndsAt.After(res.StartsAt) {
			t.Errorf("resolved endsAt %s not after startsAt %s", res.EndsAt, res.StartsAt)
		}
	}
	t.Logf("three episodes took %s", time.Since(start).Round(time.Second))
	// Only the slow node paged: nothing about lb1 or lb3, whose p90s
	// differ by scheduling noise alone (see the latencies above). A loaded
	// machine may also raise the built-in VantageMeasurementDegraded, about
	// vantage itself, rightly; it names no node and is not counted.
	var all []webhook.Alert
	for _, a := range alertsOf(rcv.Messages()) {
		if a.Labels["alertname"] != "VantageMeasurementDegraded" {
			all = append(all, a)
		}
	}
	if len(all) != 6 {
		t.Errorf("want the 6 notices about %s alone, got:%s", lb2, describe(alertsOf(rcv.Messages())))
	}

	// The timeline holds the story too.
	code, body := r.do(t, "GET", "/api/v1/timeline?since=1h", nil)
	if code != 200 || !strings.Contains(body, "LoadBalancerNodeDegraded") {
		t.Errorf("timeline: %d, does not mention the alert:\n%s", code, body)
	}
}

// startAlertmanager runs Debian's Alertmanager, routing everything to a
// webhook at hookURL.
func startAlertmanager(t *testing.T, hookURL string) string {
	t.Helper()
	return testenv.Alertmanager(t, testenv.WebhookAlertmanagerConfig(hookURL, []string{"alertname", "node"}, time.Second))
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func amAlerts(base string) ([]amAlert, error) {
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: %s", resp.Status)
	}
	var out []amAlert
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// TestAlertmanagerThroughDaemon: the daemon's alertmanager notifier
// delivers a firing alert that Alertmanager lists and routes to its own
// webhook, and after the fault clears the alert resolves there too.
func TestAlertmanagerThroughDaemon(t *testing.T) {
	t.Parallel()
	hook := testdaemon.Receiver(t) // Alertmanager's receiver
	am := startAlertmanager(t, hook.URL())
	shop := startShop(t)
	// lb2 fails every run; a healthy node would need three timed-out runs
	// of 900ms within the window to page, which a loaded machine did
	// produce at one failure and a 400ms timeout.
	cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: time.Second, Timeout: 900 * time.Millisecond,
		NoAlerts: true, NoAltPath: true}) + fmt.Sprintf(`
notifiers:
  - name: alertmanager
    type: alertmanager
    url: %s
alerts:
  - name: ShopNodeFailing
    checks: [shop-home]
    when: failures > 2
    window: 5s
    severity: page
    annotations:
      summary: "{{ .check }} fails on node {{ .node }} ({{ .node_address }})"
`, am)
	startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg), StoragePath: t.TempDir(),
		Notifiers: kinds.Notifiers(), EvalInterval: 500 * time.Millisecond, ExternalURL: "http://vantage.test"})

	setFault(t, shop, "lb2:error_ratio=1")
	var (
		got []amAlert
		err error
	)
	testenv.Eventually(t, time.Minute, "", func() error {
		got, err = amAlerts(am)
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return errNotYet
		}
		return nil
	})
	if len(got) != 1 {
		t.Fatalf("alertmanager lists %d alerts, want 1 (lb2 only): %+v", len(got), got)
	}
	a := got[0]
	for k, v := range map[string]string{"alertname": "ShopNodeFailing", "check": "shop-home", "path": "direct",
		"node": lb2, "location": "demo", "severity": "page"} {
		if a.Labels[k] != v {
			t.Errorf("label %s=%q, want %q (all: %v)", k, a.Labels[k], v, a.Labels)
		}
	}
	if a.Annotations["summary"] != "shop-home fails on node "+lb2+" ("+lb2Addr+")" || a.Annotations["fired_count"] != "1" {
		t.Errorf("annotations %v", a.Annotations)
	}
	// The address is for people reading the page; as a label it would
	// split or change Alertmanager's grouping.
	if v, ok := a.Labels["node_address"]; ok {
		t.Errorf("node_address=%q is a label", v)
	}
	if a.Status.State != "active" || !a.EndsAt.After(time.Now()) {
		t.Errorf("state %q endsAt %s, want active with a lease in the future", a.Status.State, a.EndsAt)
	}
	fired := waitAlerts(t, hook, lb2, 1, time.Minute)
	if fired[0].Status != "firing" || fired[0].Labels["alertname"] != "ShopNodeFailing" {
		t.Errorf("alertmanager's webhook got:%s", describe(fired))
	}

	setFault(t, shop, "lb2:clear")
	testenv.Eventually(t, time.Minute, "", func() error {
		got, err = amAlerts(am)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			return fmt.Errorf("still listed: %+v", got)
		}
		return nil
	})
	res := waitAlerts(t, hook, lb2, 2, time.Minute)
	if res[1].Status != "resolved" || !strings.HasPrefix(res[1].Annotations["resolution"], "resolved after ") {
		t.Errorf("alertmanager's webhook got:%s", describe(res))
	}
}

// An alert whose checks glob matches nothing is a warning at load, logged
// with its position, not an error: the daemon starts.
func TestAlertGlobMatchingNothingWarns(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	log := zerolog.New(logs).Level(zerolog.WarnLevel)
	cfg := writeConfig(t, `global: {interval: 10s}
checks: [{name: shop-home, type: tcp, address: "127.0.0.1:1"}]
alerts:
  - name: Nothing
    checks: ["nope-*"]
    when: failures > 0
`)
	d, err := daemon.New(daemon.Options{ConfigFile: cfg, StoragePath: t.TempDir(), Logger: log, Kinds: kinds.Registry(), Probers: kinds.Probers(log, nil)})
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	if d.Alerts() == nil {
		t.Error("no alert manager despite storage")
	}
	if !strings.Contains(logs.String(), `vantage.yaml:5:14: checks pattern \"nope-*\" matches no check`) {
		t.Errorf("no positioned warning in the log:\n%s", logs.String())
	}
	_ = d.Store().Close()
}

// A database another process holds locked, or a storage path that cannot
// be created, makes daemon.New fail with an error that says what to do;
// nothing starts half-way.
func TestUnusableStorageFailsClearly(t *testing.T) {
	t.Parallel()
	sqlite, err := exec.LookPath("sqlite3")
	cfg := writeConfig(t, "global: {interval: 10s}\nchecks: [{name: a, type: tcp, address: '127.0.0.1:1'}]\n")
	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		writeFile(t, file, "x")
		_, err := daemon.New(daemon.Options{ConfigFile: cfg, StoragePath: filepath.Join(file, "data"), Logger: testLogger(t), Kinds: kinds.Registry()})
		if err == nil || !strings.Contains(err.Error(), "point --storage.path elsewhere") {
			t.Fatalf("want a clear storage error, got %v", err)
		}
	})
	t.Run("locked by another process", func(t *testing.T) {
		if err != nil {
			testenv.Missing(t, "sqlite3 not installed (Debian package sqlite3): %v", err)
		}
		dir := t.TempDir()
		lock := exec.Command(sqlite, filepath.Join(dir, "vantage.db"))
		in, err := lock.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := lock.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = in.Close(); _ = lock.Process.Kill(); _ = lock.Wait() })
		// Hold the write lock until stdin closes.
		fmt.Fprintln(in, "PRAGMA journal_mode=WAL; CREATE TABLE held(a); BEGIN EXCLUSIVE; INSERT INTO held VALUES(1);")
		testenv.Eventually(t, 5*time.Second, "", func() error {
			if _, err := os.Stat(filepath.Join(dir, "vantage.db-wal")); err != nil {
				return err
			}
			return nil
		})
		start := time.Now()
		_, err = daemon.New(daemon.Options{ConfigFile: cfg, StoragePath: dir, Logger: testLogger(t), Kinds: kinds.Registry()})
		if err == nil || !strings.Contains(err.Error(), "database is locked (is another vantage using the same --storage.path?)") {
			t.Fatalf("want a clear lock error, got %v", err)
		}
		t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	})
}

// TestAlertLatencyBench checks the README's promise that a slow node pages
// within about a minute, with the demo's config and rules as `vantage demo`
// writes them (10s interval, LoadBalancerNodeDegraded: node_degraded > 0
// over 2m) and the demo's 2s evaluation interval: after a full window of
// healthy runs, every response of lb2 gets +1.5s, and the page naming lb2
// must arrive within 3 minutes, a bound that only catches a detector that
// does not page (the figure itself is make bench's). It takes about three
// minutes, beside the package's other tests.
//
// make bench runs it with VANTAGE_ALERT_LATENCY_BENCH=1 for the figures,
// adding a node slow on 30% of its responses; each case prints a line
// "ALERT-LATENCY <case> <seconds>" for it.
func TestAlertLatencyBench(t *testing.T) {
	bench := os.Getenv("VANTAGE_ALERT_LATENCY_BENCH") == "1"
	warmup := 2*time.Minute + 10*time.Second // a full window of healthy runs first
	if s := os.Getenv("VANTAGE_ALERT_LATENCY_WARMUP"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		warmup = d
	}
	cases := []struct {
		name, fault string
		bound       time.Duration
	}{
		{"every-response+1.5s", "lb2:latency=1.5s", 3 * time.Minute},
	}
	if bench {
		cases = append(cases, struct {
			name, fault string
			bound       time.Duration
		}{"30%-of-responses+1.5s", "lb2:latency=1.5s,latency_ratio=0.3", 4 * time.Minute})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			shop := startShop(t)
			rcv := testdaemon.Receiver(t)
			cfg := shop.ConfigWithOptions(demo.ConfigOptions{WebhookURL: rcv.URL()}) // the demo's, as `vantage demo` writes it
			if !strings.Contains(cfg, "- name: LoadBalancerNodeDegraded\n    when: node_degraded > 0\n") {
				t.Fatalf("the demo's node rule changed; this test measures it:\n%s", cfg)
			}
			startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, cfg), StoragePath: t.TempDir(),
				Notifiers: kinds.Notifiers(), EvalInterval: 2 * time.Second})
			time.Sleep(warmup)
			if got := forNode(alertsOf(rcv.Messages()), lb2); len(got) != 0 {
				t.Fatalf("alerts before the fault:%s", describe(got))
			}
			setFault(t, shop, tc.fault)
			injected := time.Now()
			var took time.Duration
			var page webhook.Alert
			testenv.Eventually(t, tc.bound, "LoadBalancerNodeDegraded firing for lb2", func() error {
				for _, a := range forNode(alertsOf(rcv.Messages()), lb2) {
					if a.Status == "firing" && a.Labels["alertname"] == "LoadBalancerNodeDegraded" {
						took, page = time.Since(injected), a
						return nil
					}
				}
				return fmt.Errorf("no page naming %s yet; all notices:%s", lb2, describe(alertsOf(rcv.Messages())))
			})
			if want := "load-balancer node " + lb2 + " (" + lb2Addr + "): "; !strings.HasPrefix(page.Annotations["summary"], want) {
				t.Errorf("summary %q, want it to name the node (%q)", page.Annotations["summary"], want)
			}
			t.Logf("ALERT-LATENCY %s %.1f", tc.name, took.Seconds())
			fmt.Printf("ALERT-LATENCY %s %.1f\n", tc.name, took.Seconds())
		})
	}
}
