package daemon_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
)

// TestDemoShopEveryNodeEveryPath is the "Done when": the daemon on
// the demo config probes www.shop.test on all three nodes over both paths,
// every demo target succeeds, and the exposition passes promtool.
func TestDemoShopEveryNodeEveryPath(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	cfg := writeConfig(t, shop.ConfigWithOptions(demo.ConfigOptions{Interval: time.Second, Timeout: 900 * time.Millisecond}))
	r := startDaemon(t, daemon.Options{ConfigFile: cfg})

	for _, p := range []string{"/-/healthy", "/-/ready"} {
		if code, body := r.do(t, http.MethodGet, p, nil); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}

	// The demo config: 3 node-pinned http checks × 3 nodes × 2 paths, and
	// 3 node-less checks × 2 paths.
	const wantTargets = 3*3*2 + 3*2
	var e exposition
	eventually(t, 15*time.Second, func() error {
		if n := len(r.d.Scheduler().Targets()); n != wantTargets {
			return fmt.Errorf("%d targets, want %d", n, wantTargets)
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
		return nil
	})

	for _, path := range shopPaths {
		for _, node := range shopNodes {
			want := lbl("check", "shop-home", "type", "http", "path", path, "node", node, "location", "demo", "route", "home")
			if v, ok := e.value(t, "vantage_check_success", want); !ok || v != 1 {
				t.Errorf("vantage_check_success%v = %v (present %v), want 1", want, v, ok)
			}
			if v, ok := e.value(t, "vantage_check_up", want); !ok || v != 1 {
				t.Errorf("vantage_check_up%v = %v (present %v), want 1", want, v, ok)
			}
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
	if got := e.nodesOf("vantage_check_success", lbl("check", "shop-home")); !slices.Equal(got, shopNodes) {
		t.Errorf("shop-home nodes %v, want %v", got, shopNodes)
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
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not installed (make test installs Debian's prometheus package): %v", err)
		}
		t.Skip("promtool not installed; `make test` installs it")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}
