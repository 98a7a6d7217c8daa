package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testdaemon"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// buildVantage compiles this command into a temporary directory.
func buildVantage(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vantage")
	cmd := exec.Command(goTool(), "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// daemonProc is `vantage run` as a separate process.
type daemonProc struct {
	cmd  *exec.Cmd
	logs *testenv.LogBuffer
	done chan struct{}
	base string
}

func startDaemonProc(t *testing.T, bin string, args ...string) *daemonProc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := &daemonProc{logs: &testenv.LogBuffer{}, done: make(chan struct{}), base: "http://" + addr}
	p.cmd = exec.Command(bin, append([]string{"--log.level=info", "run", "--web.listen-address=" + addr}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(t) })
	testenv.Eventually(t, 20*time.Second, "", func() error {
		select {
		case <-p.done:
			t.Fatalf("vantage exited before becoming ready:\n%s", p.logs.String())
		default:
		}
		if code, _, err := get(p.base, "/-/ready"); err != nil || code != 200 {
			return fmt.Errorf("not ready: %d %v", code, err)
		}
		return nil
	})
	return p
}

// kill sends SIGKILL: no shutdown code runs, as in a crash or OOM kill.
func (p *daemonProc) kill(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("vantage (pid %d) did not die after SIGKILL", p.cmd.Process.Pid)
	}
}

// metric returns the sum of name's samples whose labels include want.
func (p *daemonProc) metric(name string, want map[string]string) (float64, error) {
	code, body, err := get(p.base, "/metrics")
	if err != nil || code != 200 {
		return 0, fmt.Errorf("GET /metrics: %d %v", code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, m := range fams[name].GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && got[k] == v
		}
		if match {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum, nil
}

func statuses(msgs []webhook.Message) []string {
	var out []string
	for _, m := range msgs {
		for _, a := range m.Alerts {
			s := a.Status + " " + a.Labels["alertname"] + " node=" + a.Labels["node"] + " fired_count=" + a.Annotations["fired_count"]
			if r := a.Annotations["resolution"]; r != "" {
				s += " (" + r + ")"
			}
			out = append(out, s)
		}
	}
	return out
}

// TestSIGKILLWhileFiringNeitherRepagesNorForgetsResolve runs the real
// binary, kills it with SIGKILL while an alert fires, restarts it on the
// same storage and checks that the receiver gets no second "firing" and
// does get the resolved notice, exactly once.
func TestSIGKILLWhileFiringNeitherRepagesNorForgetsResolve(t *testing.T) {
	t.Parallel()
	bin := buildVantage(t)
	shop := startTestShop(t)
	rcv := testdaemon.Receiver(t)
	// A timeout the healthy nodes do not reach on a loaded machine: only
	// lb2, made bad below, is meant to fail (and only its notices count).
	cfg := writeConfig(t, shop.ConfigWithOptions(demo.ConfigOptions{Interval: 2 * time.Second,
		Timeout: 1900 * time.Millisecond, WebhookURL: rcv.URL(), NoAlerts: true, NoAltPath: true})+`
alerts:
  - name: ShopNodeFailing
    checks: [shop-home]
    when: failures > 0
    window: 5s
    for: 1s
    severity: page
`)
	storage := t.TempDir()
	args := []string{"--config.file=" + cfg, "--storage.path=" + storage, "--alerting.eval-interval=500ms"}
	sent := map[string]string{"notifier": "demo-room", "result": "sent"}

	d := startDaemonProc(t, bin, args...)
	setFault(t, shop, "lb2:error_ratio=1")
	testenv.Eventually(t, time.Minute, "first page about lb2", func() error {
		if got := lb2(rcv.Messages()); len(got) == 0 {
			return fmt.Errorf("no notification yet")
		}
		// Killed only once the daemon has recorded the delivery: delivery
		// is at least once, and a kill between the receiver's 200 and the
		// queue update would (rightly) re-send.
		if v, err := d.metric("vantage_notifications_total", sent); err != nil || v < 1 {
			return fmt.Errorf("sent counter %v %v", v, err)
		}
		return nil
	})
	if got := lb2(rcv.Messages()); len(got) != 1 || !strings.HasPrefix(got[0], "firing ShopNodeFailing node=lb2 fired_count=1") {
		t.Fatalf("before the kill, want one firing notice for lb2, got %q", got)
	}
	d.kill(t)

	d = startDaemonProc(t, bin, args...)
	// Several runs of every node with the fault still on, the restored
	// instance firing throughout: it keeps firing without a new page.
	testenv.Eventually(t, time.Minute, "restored alert firing after three runs of each node", func() error {
		if v, err := d.metric("vantage_alerts", map[string]string{"alertname": "ShopNodeFailing", "state": "firing"}); err != nil || v < 1 {
			return fmt.Errorf("vantage_alerts{state=firing} = %v (%v)", v, err)
		}
		if v, err := d.metric("vantage_check_runs_total", map[string]string{"check": "shop-home"}); err != nil || v < 9 {
			return fmt.Errorf("%v shop-home runs since the restart (%v), want 9 (3 nodes × 3)", v, err)
		}
		return nil
	})
	if got := lb2(rcv.Messages()); len(got) != 1 {
		t.Fatalf("restart re-paged: %q", got)
	}

	setFault(t, shop, "lb2:clear")
	testenv.Eventually(t, time.Minute, "resolved notice about lb2", func() error {
		if got := lb2(rcv.Messages()); len(got) < 2 {
			return fmt.Errorf("no resolved notice yet: %q", got)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // time for a duplicate to show
	got := lb2(rcv.Messages())
	if len(got) != 2 || !strings.HasPrefix(got[1], "resolved ShopNodeFailing node=lb2") ||
		!strings.Contains(got[1], "(resolved after ") {
		t.Fatalf("want firing then one resolved notice, got %q", got)
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.logs.String())
	}
}

// lb2 is statuses of the notices about lb2, the node the test made bad;
// a healthy node slowed past its timeout by a loaded machine may page too,
// which says nothing about restarts.
func lb2(msgs []webhook.Message) []string {
	var out []string
	for _, s := range statuses(msgs) {
		if strings.Contains(s, " node=lb2 ") {
			out = append(out, s)
		}
	}
	return out
}

func setFault(t *testing.T, shop *demo.Shop, spec string) {
	t.Helper()
	target, f, err := demo.ParseFault(spec)
	if err == nil {
		err = shop.SetFault(target, f)
	}
	if err != nil {
		t.Fatalf("fault %s: %v", spec, err)
	}
}
