package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// AlertmanagerBinary is Debian's Alertmanager.
const AlertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// FreeAddr reserves a loopback port long enough to learn its number. The
// binaries take an address, not a listener, so a small race with another
// process grabbing the port remains; StartProcess reports it clearly.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return addr
}

// LogBuffer collects a child's output (or any log) from several writers;
// it keeps the first MiB, so a chatty child cannot eat memory.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProcess runs bin until the test ends and waits until readyURL
// answers 200. Its output is logged when the test fails.
func StartProcess(tb testing.TB, name, bin, readyURL string, args ...string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &LogBuffer{}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	// SIGTERM first so the child shuts down cleanly; SIGKILL after 5s.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		if tb.Failed() {
			tb.Logf("%s output:\n%s", name, logs.String())
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(readyURL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-done:
			tb.Fatalf("%s exited before it was ready:\n%s", name, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready at %s: %v\n%s", name, readyURL, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Alertmanager runs Debian's Alertmanager with config (alertmanager.yml
// text) on a loopback port until the test ends and returns its base URL.
// Clustering is off: it would otherwise listen on 0.0.0.0:9094. extra
// flags are added as given; with --web.route-prefix the URL returned is
// still the bare host, and readiness is waited for under the prefix.
func Alertmanager(tb testing.TB, config string, extra ...string) string {
	tb.Helper()
	Binary(tb, AlertmanagerBinary, "prometheus-alertmanager")
	dir := tb.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	addr := FreeAddr(tb)
	prefix := ""
	for _, a := range extra {
		if p, ok := strings.CutPrefix(a, "--web.route-prefix="); ok {
			prefix = strings.TrimSuffix(p, "/")
		}
	}
	args := append([]string{
		"--config.file=" + conf,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--cluster.listen-address=",
		"--log.level=warn"}, extra...)
	StartProcess(tb, "alertmanager", AlertmanagerBinary, "http://"+addr+prefix+"/-/ready", args...)
	return "http://" + addr
}

// Eventually retries cond every 100 ms until it returns nil, failing tb
// with cond's last error once timeout has passed. what names the wait in
// the failure ("" for none).
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if what != "" {
				tb.Fatalf("%s: not within %s: %v", what, timeout, err)
			}
			tb.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WebhookAlertmanagerConfig is an alertmanager.yml that routes every alert,
// grouped by groupBy, to one webhook receiver at hook (resolved groups
// too), with a group_wait of groupWait and waits otherwise short enough
// for a test. Append inhibit_rules and the like to it.
func WebhookAlertmanagerConfig(hook string, groupBy []string, groupWait time.Duration) string {
	return fmt.Sprintf(`route:
  receiver: hook
  group_by: [%s]
  group_wait: %s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`, strings.Join(groupBy, ", "), groupWait, hook)
}
