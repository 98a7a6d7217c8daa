package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe/probeutil/testcert"
)

// TestWebConfigFileFlag: `vantage run --web.config.file=web.yml` with the
// TLS and basic auth of docs/deployment.md's example serves over TLS only,
// to a client that trusts the certificate and sends the credentials.
func TestWebConfigFileFlag(t *testing.T) {
	t.Parallel()
	bin := buildVantage(t)
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	certFile, keyFile := testcert.WriteLeaf(t, dir, ca.Leaf(t, time.Now().Add(24*time.Hour), "127.0.0.1"))
	pool := ca.Pool()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	cfg := filepath.Join(dir, "vantage.yaml")
	for path, text := range map[string]string{
		webCfg: fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n", certFile, keyFile, hash),
		cfg:    "checks:\n  - {name: nothing, type: tcp, address: '127.0.0.1:9', interval: 1h}\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := testenv.FreeAddr(t)
	logs := &testenv.LogBuffer{}
	cmd := exec.Command(bin, "run", "--config.file="+cfg, "--web.listen-address="+addr, "--web.config.file="+webCfg,
		"--storage.path="+filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("vantage output:\n%s", logs.String())
		}
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(url string, auth bool) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, "", err
		}
		if auth {
			req.SetBasicAuth("prometheus", "s3cret")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	base := "https://" + addr
	testenv.Eventually(t, 30*time.Second, "ready over TLS", func() error {
		select {
		case <-done:
			t.Fatalf("vantage exited:\n%s", logs.String())
		default:
		}
		code, body, err := get(base+"/-/ready", true)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %v %s", code, err, body)
		}
		return nil
	})
	if code, body, err := get(base+"/metrics", true); err != nil || code != http.StatusOK || !strings.Contains(body, "vantage_build_info") {
		t.Errorf("GET /metrics over TLS with credentials: %d %v", code, err)
	}
	if code, _, err := get(base+"/metrics", false); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET /metrics over TLS without credentials: %d %v, want 401", code, err)
	}
	if code, body, err := get("http://"+addr+"/metrics", true); err != nil || code != http.StatusBadRequest || strings.Contains(body, "vantage_build_info") {
		t.Errorf("GET /metrics over plain HTTP: %d %v, want 400 and no metrics", code, err)
	}
}
