package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe/browser"
)

// TestOnceBrowserSaysWhatTheDomainDid: `vantage once` of the demo's
// browser journey with the CDN refusing connections shows, on the CDN's
// domain line, that its requests failed and that the CDN refused them
// (not the proxy's ERR_TUNNEL_CONNECTION_FAILED).
func TestOnceBrowserSaysWhatTheDomainDid(t *testing.T) {
	testenv.Binary(t, browser.DefaultExecPath, "chromium")
	shop := startTestShop(t, demo.StaticHost+":refuse")
	cfg := writeConfig(t, shop.ConfigWithOptions(demo.ConfigOptions{Interval: 30 * time.Second, Timeout: 20 * time.Second,
		Browser: true, NoAltPath: true, NoAlerts: true}))
	_, stdout, stderr := vantage(t, "once", "--config.file="+cfg, "--check=web-checkout", "--browser.max-concurrent=3", "--storage.path="+t.TempDir())
	var line string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.Contains(l, "domain "+demo.StaticHost) {
			line = l
			break
		}
	}
	if !strings.Contains(line, "FAILING") || !strings.Contains(line, " failed") ||
		!strings.Contains(line, "last failure: "+demo.StaticHost+": connection refused (") || strings.Contains(line, "TUNNEL") {
		t.Fatalf("CDN domain line %q: want FAILING, failed requests and the refusal\n%s%s", line, stdout, stderr)
	}
}
