package demo

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// ConfigOptions tune the vantage config generated for a shop. The zero
// value gives the demo config described in Config.
type ConfigOptions struct {
	// Interval and Timeout are the global defaults (10s and 5s).
	Interval, Timeout time.Duration
	// Location is global.location ("demo").
	Location string
	// AltSourceIP is the source address of the alt-source path
	// ("127.0.0.2"). NoAltPath leaves that path out.
	AltSourceIP string
	NoAltPath   bool
	// Browser adds the web-checkout browser journey (needs Chromium).
	Browser bool
	// WebhookURL adds a webhook notifier named demo-room.
	WebhookURL string
	// NoAlerts leaves out the demo alert rules.
	NoAlerts bool
}

// Config is a vantage configuration (docs/writing-checks.md) for a daemon watching this
// shop: two loopback paths that resolve through the shop's DNS and trust its
// CA, and checks covering every node, the app API journey, the CDN and DNS.
// Four customer pages (home, product, search, category) run on every www
// node: the node detector pools them, and a node slow on one response in
// ten must show in enough runs per minute to page within two minutes.
func (s *Shop) Config() string { return s.ConfigWithOptions(ConfigOptions{}) }

// ConfigWithOptions is Config with tuning.
func (s *Shop) ConfigWithOptions(o ConfigOptions) string {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Location == "" {
		o.Location = "demo"
	}
	if o.AltSourceIP == "" {
		o.AltSourceIP = "127.0.0.2"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# vantage configuration for the embedded demo shop (generated).
# CA: %s  DNS: %s  fault control: %s
global:
  interval: %s
  timeout: %s
  location: %s
  quantile_windows: [1m, 5m]
  node_names: {%s}

`, s.caFile, s.DNSAddr(), s.ControlURL(), dur(o.Interval), dur(o.Timeout), yq(o.Location), s.nodeNames())
	s.writePaths(&b, !o.NoAltPath, o.AltSourceIP)

	password := "${SHOP_PASSWORD:-" + jsonInner(s.opts.Password) + "}"
	loginBody := `{"user":"synthetic","password":"` + password + `"}`
	fmt.Fprintf(&b, `checks:
  - name: shop-home
    type: http
    url: %[1]s
    nodes: {resolve: all}
    labels: {route: home}
    expect:
      status: [200]
      body_contains: ["Add to cart"]
      headers: {Content-Type: "text/html.*"}

  - name: shop-product
    type: http
    url: %[2]s
    nodes: {resolve: all}
    labels: {route: product}
    expect:
      status: [200]
      body_contains: ["add-to-cart"]

  - name: shop-search
    type: http
    url: %[10]s
    nodes: {resolve: all}
    labels: {route: search}
    expect:
      status: [200]
      body_contains: ["result(s)"]

  - name: shop-category
    type: http
    url: %[11]s
    nodes: {resolve: all}
    labels: {route: category}
    expect:
      status: [200]
      body_contains: ["product(s)"]

  - name: app-checkout
    type: http
    nodes: {resolve: all}
    labels: {route: checkout}
    steps:
      - name: login
        url: %[3]s
        method: POST
        headers: {Content-Type: application/json}
        body: %[4]s
        expect: {status: [200], json: {"token": {exists: true}}}
        extract: {token: "token"}
      - name: cart
        url: %[5]s
        headers: {Authorization: "Bearer {{ .token }}"}
        expect: {status: [200], json: {"items.#": {gte: 1}}}

  - name: cdn-static
    type: tcp
    address: %[6]s
    tls_handshake: true

  - name: cdn-app-js
    type: http
    url: %[7]s
    expect:
      status: [200]
      headers: {Content-Type: "text/javascript.*"}

  - name: shop-dns
    type: dns
    query: {name: %[8]s, type: A, server: %[9]s}
    expect: {answers_min: 3}
`,
		yq(s.URL(WWWHost, "/")),
		yq(s.URL(WWWHost, "/product/123")),
		yq(s.URL(APIHost, "/v1/login")),
		yq(loginBody),
		yq(s.URL(APIHost, "/v1/cart")),
		yq(s.Addr(StaticHost)),
		yq(s.URL(StaticHost, "/app.js")),
		WWWHost,
		yq(s.DNSAddr()),
		yq(s.URL(WWWHost, "/search?q=lego")),
		yq(s.URL(WWWHost, "/category/toys")),
	)
	if o.Browser {
		fmt.Fprintf(&b, `
  - name: web-checkout
    type: browser
    url: %[1]s
    interval: 30s
    timeout: 20s
    nodes: {resolve: all}
    steps:
      - navigate: %[2]s
      - click: "#add-to-cart"
      - wait_visible: "#cart-count"
      - assert_text: {selector: "#cart-count", contains: "1"}
      - fill: {selector: "input[name=q]", value: "lego"}
      - press: Enter
      - assert_url: {contains: "/search"}
    screenshot: on_failure
`, yq(s.URL(WWWHost, "/")), yq(s.URL(WWWHost, "/product/123")))
	}
	if o.WebhookURL != "" {
		fmt.Fprintf(&b, `
notifiers:
  - name: demo-room
    type: webhook
    url: %s
    send_resolved: true
    repeat_interval: 30m
`, yq(o.WebhookURL))
	}
	if !o.NoAlerts {
		// The README's rules, with windows short enough for a demo. The node
		// rule needs no `for`: the detector already asks for evidence before
		// it calls a node degraded, and holds it while the evidence lasts.
		b.WriteString(`
alerts:
  - name: ShopSlowForCustomers
    checks: ["shop-*", "app-checkout"]
    when: p99 > 1.5s
    window: 2m
    for: 30s
    keep_firing_for: 2m
    severity: page
    annotations:
      summary: "{{ .check }} p99 {{ .value }} via {{ .path }} node {{ .node }}"
  - name: LoadBalancerNodeDegraded
    when: node_degraded > 0
    window: 2m
    by: [node]
    severity: page
    annotations:
      summary: "load-balancer node {{ .node }}{{ with .node_address }} ({{ . }}){{ end }}: {{ .slow_share }} of its runs slow or failed ({{ .sibling_slow_share }} on its siblings); its slow runs take {{ .slow_runs_take }} against a p90 of {{ .sibling_p90 }} on its siblings; seen in {{ .affected }} since {{ .active_since }}"
`)
		if o.Browser {
			// A browser journey takes far longer than one request, so it
			// gets its own rule. Healthy web-checkout runs measured on a
			// 2-core machine under two busy loops (397 runs, 33 minutes):
			// p50 0.59s, p90 1.1s, p99 1.7-2.3s, the first run with a cold
			// browser up to 4.4s. A p90 over two or more runs is never a
			// single run's, so one slow run does not page.
			b.WriteString(`  - name: CheckoutJourneySlow
    checks: [web-checkout]
    when: p90 > 4s
    window: 5m
    for: 3m
    keep_firing_for: 2m
    severity: page
    annotations:
      summary: "{{ .check }} p90 {{ .value }} via {{ .path }} node {{ .node }} ({{ .node_address }})"
`)
			b.WriteString(`  - name: DependencyDomainFailing
    checks: [web-checkout]
    when: domain_error_ratio > 0.2
    window: 2m
    by: [check, domain]
    severity: page
    annotations:
      summary: "{{ .domain }} fails for {{ .value }} of requests in {{ .check }}"
`)
		}
	}
	return b.String()
}

// nodeNames is the global node_names map: the shop's node addresses to
// their names, so resolved nodes are called lb1..lb3 everywhere.
func (s *Shop) nodeNames() string {
	var b strings.Builder
	for i, n := range s.opts.Nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", yq(n.IP.String()), n.Name)
	}
	return b.String()
}

func (s *Shop) writePaths(b *strings.Builder, alt bool, altIP string) {
	ca := yq(s.caFile)
	fmt.Fprintf(b, `paths:
  - name: direct
    resolver: %s
    tls: {ca_file: %s}
`, yq(s.DNSAddr()), ca)
	if alt {
		fmt.Fprintf(b, `  - name: alt-source
    source_ip: %s
    resolver: %s
    tls: {ca_file: %s}
`, yq(altIP), yq(s.DNSAddr()), ca)
	}
	b.WriteString("\n")
}

// BenchOptions shape a synthetic load config for benchmarks.
type BenchOptions struct {
	// Checks is the number of http checks; each probes every node, so the
	// daemon runs Checks × len(Nodes) targets.
	Checks int
	// Scheme is "http" (default, cheap) or "https" (a TLS handshake per run).
	Scheme string
	// Interval and Timeout per check (default 10s and 5s).
	Interval, Timeout time.Duration
	// URLPath is requested on www.shop.test (default "/").
	URLPath string
	// Location is global.location ("bench").
	Location string
}

// BenchConfig is a vantage config with o.Checks http checks named
// bench-00000… pinned to the nodes by address (no DNS per run), over one
// path. Requests per second ≈ Checks × len(Nodes) / Interval.
func (s *Shop) BenchConfig(o BenchOptions) (string, error) {
	if o.Checks <= 0 {
		return "", fmt.Errorf("demo: bench config: Checks must be positive, got %d", o.Checks)
	}
	if o.Scheme == "" {
		o.Scheme = "http"
	}
	if o.Scheme != "http" && o.Scheme != "https" {
		return "", fmt.Errorf("demo: bench config: scheme %q: want http or https", o.Scheme)
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Timeout >= o.Interval {
		return "", fmt.Errorf("demo: bench config: timeout %s must be shorter than interval %s", o.Timeout, o.Interval)
	}
	if o.URLPath == "" {
		o.URLPath = "/"
	}
	if o.Location == "" {
		o.Location = "bench"
	}
	u := s.URL(WWWHost, o.URLPath)
	if o.Scheme == "http" {
		u = s.HTTPURL(WWWHost, o.URLPath)
	}
	var nodes strings.Builder
	for i, n := range s.opts.Nodes {
		if i > 0 {
			nodes.WriteString(", ")
		}
		fmt.Fprintf(&nodes, "{name: %s, address: %s}", n.Name, n.IP)
	}

	var b strings.Builder
	b.Grow(o.Checks * 200)
	fmt.Fprintf(&b, `# vantage benchmark configuration against the demo shop (generated).
global:
  interval: %s
  timeout: %s
  location: %s
  quantile_windows: [1m, 5m]

`, dur(o.Interval), dur(o.Timeout), yq(o.Location))
	s.writePaths(&b, false, "")
	b.WriteString("checks:\n")
	for i := range o.Checks {
		fmt.Fprintf(&b, `  - name: bench-%05d
    type: http
    url: %s
    nodes: {addresses: [%s]}
    expect: {status: [200]}
`, i, yq(u), nodes.String())
	}
	return b.String(), nil
}

// dur renders d in Prometheus duration syntax (no fractions: 1500ms, not 1.5s).
func dur(d time.Duration) string { return model.Duration(d).String() }

// yq quotes s as a YAML scalar: single-quoted (readable, backslashes
// literal) unless it holds control characters, then double-quoted JSON
// (JSON strings are valid YAML).
func yq(s string) string {
	if plainYAML(s) {
		return s
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return jsonQuote(s)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func jsonQuote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// jsonInner escapes s for use inside a JSON string literal.
func jsonInner(s string) string {
	q := jsonQuote(s)
	return q[1 : len(q)-1]
}

// plainYAML reports whether s can be written unquoted and still read back
// as the same string (a conservative test: lower-case words only).
func plainYAML(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	switch s {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
