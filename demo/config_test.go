package demo

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

func parseYAML(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("config is not YAML: %v\n%s", err, s)
	}
	return m
}

func checksByName(t *testing.T, m map[string]any) map[string]map[string]any {
	t.Helper()
	list, ok := m["checks"].([]any)
	if !ok {
		t.Fatalf("checks is %T", m["checks"])
	}
	out := map[string]map[string]any{}
	for _, c := range list {
		cm := c.(map[string]any)
		out[cm["name"].(string)] = cm
	}
	return out
}

func TestConfig(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	cfg := s.Config()
	m := parseYAML(t, cfg)

	g := m["global"].(map[string]any)
	if g["interval"] != "10s" || g["timeout"] != "5s" || g["location"] != "demo" || fmt.Sprint(g["quantile_windows"]) != "[1m 5m]" {
		t.Errorf("global = %v", g)
	}
	// Resolved nodes are named as the shop and its control endpoint call them.
	if nn := fmt.Sprint(g["node_names"]); nn != "map[127.0.0.11:lb1 127.0.0.12:lb2 127.0.0.13:lb3]" {
		t.Errorf("node_names = %s", nn)
	}
	paths := m["paths"].([]any)
	if len(paths) != 2 {
		t.Fatalf("paths = %v", paths)
	}
	for i, name := range []string{"direct", "alt-source"} {
		p := paths[i].(map[string]any)
		if p["name"] != name || p["resolver"] != s.DNSAddr() || p["tls"].(map[string]any)["ca_file"] != s.CAFile() {
			t.Errorf("path %d = %v", i, p)
		}
	}
	if paths[1].(map[string]any)["source_ip"] != "127.0.0.2" {
		t.Errorf("alt-source = %v", paths[1])
	}

	checks := checksByName(t, m)
	for _, name := range []string{"shop-home", "shop-product", "shop-search", "shop-category", "app-checkout", "cdn-static", "cdn-app-js", "shop-dns"} {
		if checks[name] == nil {
			t.Errorf("check %s missing", name)
		}
	}
	home := checks["shop-home"]
	if home["url"] != s.URL(WWWHost, "/") || home["nodes"].(map[string]any)["resolve"] != "all" ||
		home["labels"].(map[string]any)["route"] != "home" ||
		fmt.Sprint(home["expect"].(map[string]any)["body_contains"]) != "[Add to cart]" {
		t.Errorf("shop-home = %v", home)
	}
	if !strings.Contains(home["url"].(string), fmt.Sprintf(":%d/", s.HTTPSPort())) {
		t.Errorf("shop-home url %v lacks the HTTPS port", home["url"])
	}
	steps := checks["app-checkout"]["steps"].([]any)
	login := steps[0].(map[string]any)
	if login["url"] != s.URL(APIHost, "/v1/login") || login["body"] != `{"user":"synthetic","password":"${SHOP_PASSWORD:-demo-password}"}` ||
		login["extract"].(map[string]any)["token"] != "token" {
		t.Errorf("login step = %v", login)
	}
	if h := steps[1].(map[string]any)["headers"].(map[string]any)["Authorization"]; h != "Bearer {{ .token }}" {
		t.Errorf("cart Authorization = %v", h)
	}
	if c := checks["cdn-static"]; c["type"] != "tcp" || c["address"] != s.Addr(StaticHost) || c["tls_handshake"] != true {
		t.Errorf("cdn-static = %v", c)
	}
	if c := checks["cdn-app-js"]; c["url"] != s.URL(StaticHost, "/app.js") {
		t.Errorf("cdn-app-js = %v", c)
	}
	dnsCheck := checks["shop-dns"]
	if q := dnsCheck["query"].(map[string]any); q["name"] != WWWHost || q["type"] != "A" || q["server"] != s.DNSAddr() ||
		dnsCheck["expect"].(map[string]any)["answers_min"] != 3 {
		t.Errorf("shop-dns = %v", dnsCheck)
	}
	if _, ok := m["alerts"]; !ok {
		t.Error("default config has no alerts")
	}
	if checks["web-checkout"] != nil {
		t.Error("browser check present without ConfigOptions.Browser")
	}

	opt := parseYAML(t, s.ConfigWithOptions(ConfigOptions{Browser: true, NoAltPath: true, NoAlerts: true, Interval: 30 * time.Second, Location: "it's"}))
	if len(opt["paths"].([]any)) != 1 || opt["alerts"] != nil || opt["global"].(map[string]any)["location"] != "it's" ||
		opt["global"].(map[string]any)["interval"] != "30s" {
		t.Errorf("options not applied: %v", opt)
	}
	if wc := checksByName(t, opt)["web-checkout"]; wc == nil || len(wc["steps"].([]any)) != 7 {
		t.Errorf("web-checkout = %v", wc)
	}

	// The browser journey has its own rule: the per-request latency rule
	// would page on a healthy journey, which takes seconds on a busy host.
	rules := map[string]map[string]any{}
	for _, a := range parseYAML(t, s.ConfigWithOptions(ConfigOptions{Browser: true}))["alerts"].([]any) {
		rules[a.(map[string]any)["name"].(string)] = a.(map[string]any)
	}
	if c := fmt.Sprint(rules["ShopSlowForCustomers"]["checks"]); c != "[shop-* app-checkout]" {
		t.Errorf("ShopSlowForCustomers checks %s", c)
	}
	if r := rules["CheckoutJourneySlow"]; r == nil || fmt.Sprint(r["checks"]) != "[web-checkout]" || r["when"] != "p90 > 4s" || r["for"] != "3m" {
		t.Errorf("CheckoutJourneySlow = %v", r)
	}
}

func TestConfigCustomPassword(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Password: `p"w'd`})
	checks := checksByName(t, parseYAML(t, s.Config()))
	body := checks["app-checkout"]["steps"].([]any)[0].(map[string]any)["body"]
	if body != `{"user":"synthetic","password":"${SHOP_PASSWORD:-p\"w'd}"}` {
		t.Errorf("login body = %v", body)
	}
}

func TestBenchConfig(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	for _, scheme := range []string{"http", "https"} {
		cfg, err := s.BenchConfig(BenchOptions{Checks: 25, Scheme: scheme, Interval: 5 * time.Second, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m := parseYAML(t, cfg)
		checks := checksByName(t, m)
		if len(checks) != 25 {
			t.Fatalf("%s: %d checks", scheme, len(checks))
		}
		c := checks["bench-00024"]
		want := s.HTTPURL(WWWHost, "/")
		if scheme == "https" {
			want = s.URL(WWWHost, "/")
		}
		if c["url"] != want {
			t.Errorf("%s: url %v, want %s", scheme, c["url"], want)
		}
		addrs := c["nodes"].(map[string]any)["addresses"].([]any)
		if len(addrs) != 3 || addrs[1].(map[string]any)["name"] != "lb2" || addrs[1].(map[string]any)["address"] != "127.0.0.12" {
			t.Errorf("%s: addresses %v", scheme, addrs)
		}
		if g := m["global"].(map[string]any); g["interval"] != "5s" || g["timeout"] != "2s" {
			t.Errorf("global %v", g)
		}
	}
	for _, bad := range []BenchOptions{{Checks: 0}, {Checks: 1, Scheme: "ftp"}, {Checks: 1, Interval: time.Second, Timeout: 2 * time.Second}} {
		if _, err := s.BenchConfig(bad); err == nil {
			t.Errorf("BenchConfig(%+v) accepted", bad)
		}
	}
}

// TestCloseReleasesEverything is not parallel so the goroutine count is
// not disturbed by other tests.
func TestCloseReleasesEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Start(t.Context(), Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	// Leave work in flight: a stalled connection, a delayed request and a
	// kept-alive HTTP/2 connection.
	if err := s.SetFault("lb1", Fault{Stall: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFault("lb2", Fault{Latency: Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stalled := pinnedClient(t, s, s.Nodes()[0].IP, 10*time.Second)
	delayed := pinnedClient(t, s, s.Nodes()[1].IP, 10*time.Second)
	ok := pinnedClient(t, s, s.Nodes()[2].IP, 10*time.Second)
	get(t, ok, s.URL(WWWHost, "/"))
	errs := make(chan error, 2)
	for _, c := range []*http.Client{stalled, delayed} {
		go func() {
			resp, err := c.Get(s.URL(WWWHost, "/"))
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond)

	// Close must not wait for the stalled connection or the hour-long
	// delay; the bound only catches that, not how fast Close is.
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close waits for the work in flight")
	}
	t.Logf("Close took %s", time.Since(start))
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("request in flight at Close succeeded")
			}
		case <-time.After(time.Minute):
			t.Fatal("client still waiting after Close")
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range []*http.Client{stalled, delayed, ok} {
		c.Transport.(*http.Transport).CloseIdleConnections()
	}
	deadline := time.Now().Add(time.Minute)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before Start, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
	if c, err := net.Dial("tcp", netip.AddrPortFrom(s.Nodes()[2].IP, uint16(s.HTTPPort())).String()); err == nil {
		c.Close()
		t.Error("shop still listening after Close")
	}
}
