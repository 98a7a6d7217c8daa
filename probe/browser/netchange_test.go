package browser

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
)

const netChangeChildEnv = "VANTAGE_BROWSER_NETCHANGE_CHILD"

// TestRetryAfterNetworkChange: Chromium aborts requests in flight when an
// address on the host changes. A run cut that way says nothing about the
// target, so the prober runs the journey again.
//
// The address change must not reach other tests' browsers, so the test
// re-runs itself inside a network namespace of its own (only loopback);
// Chromium, the proxy and the server all live there.
func TestRetryAfterNetworkChange(t *testing.T) {
	needChromium(t)
	if os.Getenv(netChangeChildEnv) != "" {
		netChangeChild(t, os.Getenv(netChangeChildEnv))
		return
	}
	testenv.RootAndIP(t)
	ns := fmt.Sprintf("vbr-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestRetryAfterNetworkChange$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netChangeChildEnv+"="+ns)
	out, err := cmd.CombinedOutput()
	t.Logf("inside namespace %s:\n%s", ns, out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestRetryAfterNetworkChange")) {
		t.Fatalf("child test in its namespace failed: %v", err)
	}
}

func netChangeChild(t *testing.T, ns string) {
	var changed atomic.Bool
	var changeErr error
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<html><body><h1 id=ok>loaded</h1></body></html>`)
	}))
	// Chromium aborts connections still being set up (not those already
	// carrying a request): hold the first TLS handshake, which keeps the
	// proxy's tunnel pending, and change the network meanwhile.
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if !changed.Swap(true) {
			// A new link with an address: what a container start does to
			// the host.
			for _, args := range [][]string{
				{"link", "add", "vbr0", "type", "veth", "peer", "name", "vbr1"},
				{"addr", "add", "10.214.0.1/24", "dev", "vbr0"},
				{"link", "set", "vbr1", "up"},
				{"link", "set", "vbr0", "up"},
			} {
				if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil && changeErr == nil {
					changeErr = fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
				}
			}
			time.Sleep(3 * time.Second)
		}
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	p := New(Options{Logger: zerolog.New(&logs)})
	defer p.Close()
	yaml := fmt.Sprintf(`
checks:
  - name: netchange
    type: browser
    timeout: 20s
    screenshot: never
    tls: {ca_file: %s}
    steps:
      - navigate: %s/
      - wait_visible: "#ok"
`, ca, srv.URL)
	tg := (&fixture{}).targetsWithPaths(t, yaml, "netchange")[0]
	out := runTarget(p, tg)
	if changeErr != nil {
		t.Fatal(changeErr)
	}
	t.Logf("%s\nlog: %s", describe(out), logs.String())
	if out.Result != probe.Success {
		t.Fatalf("want success after running again: %s", describe(out))
	}
	if !strings.Contains(out.Detail, "ran twice") || !strings.Contains(out.Detail, "ERR_NETWORK_CHANGED") {
		t.Errorf("detail should say the run was repeated and why: %q", out.Detail)
	}
	if !strings.Contains(logs.String(), "running it again") {
		t.Errorf("the repeat should be logged: %s", logs.String())
	}
}
