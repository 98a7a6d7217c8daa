package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// These tests run the real `run` and `demo` commands and stop them with
// SIGTERM sent to the test process. They are not parallel: a signal reaches
// every command running in the process. The signal is only sent once the
// command answers /-/ready, i.e. after its handlers are installed.

func get(base, path string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// command runs the CLI in the background.
type command struct {
	stdout, stderr testenv.LogBuffer
	done           chan int
}

func startCommand(args ...string) *command {
	c := &command{done: make(chan int, 1)}
	go func() { c.done <- run(args, &c.stdout, &c.stderr) }()
	return c
}

// waitReady waits for /-/ready, failing early if the command exits.
func (c *command) waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case code := <-c.done:
			t.Fatalf("exited with %d before becoming ready\nstdout: %s\nstderr: %s", code, c.stdout.String(), c.stderr.String())
		default:
		}
		if code, _, err := get(base, "/-/ready"); err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 20s\nstderr: %s", c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *command) stop(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-c.done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0\nstderr: %s", code, c.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("did not stop within 15s of SIGTERM\nstderr: %s", c.stderr.String())
	}
}

// allShopHomeUp checks that shop-home's last run succeeded over every path
// on every node.
func allShopHomeUp(metrics string) error {
	for _, path := range shopPaths {
		for _, node := range shopNodes {
			found := false
			for _, l := range strings.Split(metrics, "\n") {
				if strings.HasPrefix(l, "vantage_check_success{") && strings.Contains(l, `check="shop-home"`) &&
					strings.Contains(l, `path="`+path+`"`) && strings.Contains(l, `node="`+node+`"`) && strings.HasSuffix(l, " 1") {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("no successful shop-home run over %s on %s yet", path, node)
			}
		}
	}
	return nil
}

// TestRunCommandServesReloadsOnSIGHUPAndStops runs `vantage run` against
// the demo shop: metrics for every node and path, SIGHUP with a broken
// config keeps it running and reports the failure, SIGTERM stops it.
func TestRunCommandServesReloadsOnSIGHUPAndStops(t *testing.T) {
	shop := startTestShop(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vantage.yaml")
	if err := os.WriteFile(cfg, []byte(shop.ConfigWithOptions(demo.ConfigOptions{Interval: 1500 * time.Millisecond, Timeout: 1200 * time.Millisecond})), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	c := startCommand("--log.format=json", "run", "--config.file="+cfg, "--web.listen-address="+addr,
		"--storage.path="+filepath.Join(dir, "data"), "--shard=0/1")
	c.waitReady(t, base)
	testenv.Eventually(t, 30*time.Second, "", func() error {
		_, body, err := get(base, "/metrics")
		if err != nil {
			return err
		}
		return allShopHomeUp(body)
	})

	if err := os.WriteFile(cfg, []byte("checks:\n  - name: x\n    type: http\n    urll: https://x.test/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "", func() error {
		_, body, err := get(base, "/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "\nvantage_config_last_reload_successful 0\n") {
			return fmt.Errorf("vantage_config_last_reload_successful is not 0 after SIGHUP with a broken config")
		}
		// The old config still runs.
		return allShopHomeUp(body)
	})
	if want := cfg + `:4:5: unknown key \"urll\"`; !strings.Contains(c.stderr.String(), want) {
		t.Errorf("the rejected reload's problem %s is not logged:\n%s", want, c.stderr.String())
	}
	c.stop(t)
	if !strings.Contains(c.stderr.String(), "vantage stopped") {
		t.Errorf("no shutdown message in the log:\n%s", c.stderr.String())
	}
}

// TestDemoCommand is `make demo`: the shop and a daemon start, the banner
// says where to look, www.shop.test is probed on all three nodes over both
// paths, and SIGTERM stops both.
func TestDemoCommand(t *testing.T) {
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	c := startCommand("demo", "--web.listen-address="+addr, "--demo.dns-address=127.0.0.10:0",
		"--demo.https-port=0", "--demo.http-port=0", "--demo.control-address=127.0.0.10:0",
		"--storage.path="+t.TempDir(), "--demo.interval=2s", "--fault=lb2:latency=300ms")
	c.waitReady(t, base)
	out := c.stdout.String()
	for _, want := range []string{base + "/metrics", "vantage once --config.file=", "/faults/lb2", "lb1=127.0.0.11 lb2=127.0.0.12 lb3=127.0.0.13"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	testenv.Eventually(t, 30*time.Second, "", func() error {
		_, body, err := get(base, "/metrics")
		if err != nil {
			return err
		}
		if err := allShopHomeUp(body); err != nil {
			return err
		}
		// The --fault given at start shows on lb2 only.
		for _, l := range strings.Split(body, "\n") {
			if !strings.HasPrefix(l, "vantage_http_phase_seconds{") || !strings.Contains(l, `check="shop-home"`) || !strings.Contains(l, `phase="processing"`) {
				continue
			}
			var v float64
			if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err != nil {
				return err
			}
			slow := strings.Contains(l, `node="lb2"`)
			if slow != (v > 0.25) {
				return fmt.Errorf("processing %.3fs: %s", v, l)
			}
		}
		return nil
	})
	c.stop(t)
}

// TestDemoSaysWhatItLeavesOutAndMoves: without Chromium the demo says,
// in its banner and at WARN, that the browser journey and its rules are
// left out, why, and how to get them; a taken control address moves alone
// (the DNS server keeps the free port asked for) and the banner's curl
// lines use the new address, which answers.
func TestDemoSaysWhatItLeavesOutAndMoves(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.10:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dnsL, err := net.ListenPacket("udp", "127.0.0.10:0")
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := dnsL.LocalAddr().String()
	_ = dnsL.Close()
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	dir := t.TempDir()
	c := startCommand("demo", "--web.listen-address="+addr, "--demo.dns-address="+dnsAddr,
		"--demo.https-port=0", "--demo.http-port=0", "--demo.control-address="+taken.Addr().String(),
		"--storage.path="+dir, "--demo.interval=2s", "--browser.path=/nonexistent/chromium")
	c.waitReady(t, base)
	out, logs := c.stdout.String(), c.stderr.String()
	for _, want := range []string{
		"!! The demo runs WITHOUT the browser journey (check web-checkout; alert rules CheckoutJourneySlow, DependencyDomainFailing): Chromium was not found at /nonexistent/chromium.",
		"apt-get install chromium",
		"--browser.path",
		"!! The control endpoint could not use " + taken.Addr().String(),
		"address already in use",
		"shop DNS       " + dnsAddr + " ",
		"vantage timeline --storage.path=" + dir + " ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(logs, "level=warn") || !strings.Contains(logs, "WITHOUT the browser journey") || !strings.Contains(logs, "control endpoint") {
		t.Errorf("no WARN lines for the left-out journey and the moved endpoint:\n%s", logs)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "vantage.yaml"))
	if err != nil || strings.Contains(string(cfg), "web-checkout") {
		t.Errorf("config without Chromium has the browser journey (%v)", err)
	}
	// The banner's curl lines reach the moved endpoint.
	m := regexp.MustCompile(`curl -X DELETE (http://127\.0\.0\.10:\d+)/faults `).FindStringSubmatch(out)
	if m == nil || m[1] == "http://"+taken.Addr().String() {
		t.Fatalf("banner's curl line %v does not use the moved control endpoint:\n%s", m, out)
	}
	if code, _, err := get(m[1], "/faults"); err != nil || code != http.StatusOK {
		t.Errorf("GET %s/faults: %d %v", m[1], code, err)
	}
	c.stop(t)

	// Turned off on purpose, the demo says which flag to drop.
	addr = testenv.FreeAddr(t)
	c = startCommand("demo", "--web.listen-address="+addr, "--demo.dns-address=127.0.0.10:0",
		"--demo.https-port=0", "--demo.http-port=0", "--demo.control-address=127.0.0.10:0",
		"--storage.path="+t.TempDir(), "--demo.interval=2s", "--no-demo.browser")
	c.waitReady(t, "http://"+addr)
	if out := c.stdout.String(); !strings.Contains(out, "WITHOUT the browser journey") || !strings.Contains(out, "--no-demo.browser was given") ||
		!strings.Contains(out, "without --no-demo.browser") || strings.Contains(out, "could not use") {
		t.Errorf("banner with --no-demo.browser:\n%s", out)
	}
	c.stop(t)
}
