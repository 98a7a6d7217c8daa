package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

func startShop(t *testing.T, opts Options) *Shop {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// pinnedClient sends every request to ip (keeping the URL's port, host
// header and SNI), as vantage's node pinning does.
func pinnedClient(t *testing.T, s *Shop, ip netip.Addr, timeout time.Duration) *http.Client {
	t.Helper()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		},
		TLSClientConfig:   &tls.Config{RootCAs: s.CAPool()},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(b)
}

func TestTwoShopsInParallel(t *testing.T) {
	t.Parallel()
	shops := make([]*Shop, 2)
	var wg sync.WaitGroup
	for i := range shops {
		wg.Go(func() {
			s, err := Start(t.Context(), Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
			if err != nil {
				t.Errorf("Start %d: %v", i, err)
				return
			}
			shops[i] = s
		})
	}
	wg.Wait()
	for _, s := range shops {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	if t.Failed() {
		return
	}
	a, b := shops[0], shops[1]
	if a.HTTPSPort() == b.HTTPSPort() || a.HTTPPort() == b.HTTPPort() || a.DNSAddr() == b.DNSAddr() || a.ControlURL() == b.ControlURL() {
		t.Fatalf("shops share a port: https %d/%d http %d/%d dns %s/%s", a.HTTPSPort(), b.HTTPSPort(), a.HTTPPort(), b.HTTPPort(), a.DNSAddr(), b.DNSAddr())
	}
	if a.HTTPSPort() == a.HTTPPort() {
		t.Fatalf("HTTPS and HTTP share port %d", a.HTTPPort())
	}
	for _, s := range shops {
		for _, n := range s.Nodes() {
			resp, _ := get(t, pinnedClient(t, s, n.IP, 5*time.Second), s.URL(WWWHost, "/healthz"))
			if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != n.Name {
				t.Errorf("%s: status %d served by %q", n.Name, resp.StatusCode, resp.Header.Get("X-Served-By"))
			}
		}
	}
	// Each shop has its own CA: a's pool must not trust b.
	c := pinnedClient(t, b, b.Nodes()[0].IP, 5*time.Second)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = a.CAPool()
	if _, err := c.Get(b.URL(WWWHost, "/")); err == nil {
		t.Error("shop b's certificate verified against shop a's CA")
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	t.Parallel()
	_, err := Start(t.Context(), Options{APIIP: netip.MustParseAddr("127.0.0.11"), Logger: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "share address") {
		t.Fatalf("duplicate address: err = %v", err)
	}
	_, err = Start(t.Context(), Options{Nodes: []Node{{Name: "LB 1", IP: netip.MustParseAddr("127.0.0.11")}}, Logger: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "invalid name") {
		t.Fatalf("bad node name: err = %v", err)
	}
	// A taken fixed port fails clearly instead of picking another.
	s := startShop(t, Options{})
	_, err = Start(t.Context(), Options{HTTPSPort: s.HTTPSPort(), Logger: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "HTTPS listeners") {
		t.Fatalf("taken port: err = %v", err)
	}
}

func dnsQuery(t *testing.T, s *Shop, net, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.DNSAddr())
	if err != nil {
		t.Fatalf("DNS %s %s over %s: %v", name, dns.TypeToString[qtype], net, err)
	}
	return r
}

func aRecords(m *dns.Msg) []string {
	var ips []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
			if a.Hdr.Ttl != dnsTTL {
				ips = append(ips, "bad-ttl")
			}
		}
	}
	slices.Sort(ips)
	return ips
}

func TestDNS(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	for _, proto := range []string{"udp", "tcp"} {
		r := dnsQuery(t, s, proto, "WWW.shop.test", dns.TypeA)
		if got := aRecords(r); !slices.Equal(got, []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}) || !r.Authoritative {
			t.Errorf("%s: www A = %v (aa=%v)", proto, got, r.Authoritative)
		}
	}
	if got := aRecords(dnsQuery(t, s, "udp", APIHost, dns.TypeA)); !slices.Equal(got, []string{"127.0.0.21"}) {
		t.Errorf("api A = %v", got)
	}
	if got := aRecords(dnsQuery(t, s, "udp", StaticHost, dns.TypeA)); !slices.Equal(got, []string{"127.0.0.31"}) {
		t.Errorf("static A = %v", got)
	}
	if r := dnsQuery(t, s, "udp", WWWHost, dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("www AAAA: rcode %s answers %d ns %d; want NOERROR, no answers, SOA", dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Ns))
	}
	for _, name := range []string{"nope.shop.test", "x.shop-cdn.test"} {
		if r := dnsQuery(t, s, "udp", name, dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("%s: rcode %s, want NXDOMAIN", name, dns.RcodeToString[r.Rcode])
		}
	}
	if r := dnsQuery(t, s, "udp", "example.com", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("example.com: rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}

	if err := s.SetFault("lb2", Fault{DNSRemove: true}); err != nil {
		t.Fatal(err)
	}
	if got := aRecords(dnsQuery(t, s, "udp", WWWHost, dns.TypeA)); !slices.Equal(got, []string{"127.0.0.11", "127.0.0.13"}) {
		t.Errorf("after dns_remove lb2: www A = %v", got)
	}
	if err := s.SetFault(WWWHost, Fault{DNSRemove: true}); err == nil {
		t.Error("dns_remove on a domain accepted")
	}
	if err := s.ClearFault("lb2"); err != nil {
		t.Fatal(err)
	}
	if got := aRecords(dnsQuery(t, s, "tcp", WWWHost, dns.TypeA)); len(got) != 3 {
		t.Errorf("after clear: www A = %v", got)
	}
}

func TestHTTPSPerNode(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	if b, err := os.ReadFile(s.CAFile()); err != nil || !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("CA file %s: %v", s.CAFile(), err)
	}
	for _, n := range s.Nodes() {
		c := pinnedClient(t, s, n.IP, 5*time.Second)
		resp, body := get(t, c, s.URL(WWWHost, "/"))
		if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != n.Name {
			t.Errorf("%s: status %d X-Served-By %q", n.Name, resp.StatusCode, resp.Header.Get("X-Served-By"))
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("%s: protocol %s, want HTTP/2", n.Name, resp.Proto)
		}
		if resp.TLS == nil || resp.TLS.ServerName != WWWHost {
			t.Errorf("%s: TLS state %+v", n.Name, resp.TLS)
		}
		for _, want := range []string{
			"Add to cart", `href="/product/123"`, `<form action="/search"`, `name="q"`,
			`src="` + s.URL(StaticHost, "/app.js") + `"`, `src="` + s.URL(StaticHost, "/logo.png") + `"`,
			`rel="stylesheet" href="` + s.URL(StaticHost, "/style.css") + `"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: home page lacks %q", n.Name, want)
			}
		}
		if ct := resp.Header.Get("Content-Type"); ct != ctHTML {
			t.Errorf("home content type %q", ct)
		}
	}

	c := pinnedClient(t, s, s.Nodes()[1].IP, 5*time.Second)
	resp, body := get(t, c, s.URL(WWWHost, "/product/123"))
	if resp.StatusCode != 200 || !strings.Contains(body, `id="add-to-cart"`) || !strings.Contains(body, `id="cart-count"`) {
		t.Errorf("product page: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, c, s.URL(WWWHost, "/search?q=<LEGO>"))
	if resp.StatusCode != 200 || !strings.Contains(body, "&lt;LEGO&gt;") || strings.Contains(body, "<LEGO>") {
		t.Errorf("search page escapes badly: %q", body)
	}
	_, body = get(t, c, s.URL(WWWHost, "/search?q=lego"))
	if !strings.Contains(body, "/product/123") || strings.Contains(body, "/product/456") || !strings.Contains(body, "1 result(s)") {
		t.Errorf("search results wrong: %q", body)
	}
	if resp, _ := get(t, c, s.URL(WWWHost, "/product/999")); resp.StatusCode != 404 {
		t.Errorf("unknown product: %d", resp.StatusCode)
	}

	// Plain HTTP serves the same pages on the same addresses.
	hc := pinnedClient(t, s, s.Nodes()[2].IP, 5*time.Second)
	resp, body = get(t, hc, s.HTTPURL(WWWHost, "/"))
	if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != "lb3" || !strings.Contains(body, "Add to cart") {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, resp.Header.Get("X-Served-By"))
	}
}

func TestStaticDomain(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	c := pinnedClient(t, s, s.StaticIP(), 5*time.Second)
	for path, ct := range map[string]string{"/app.js": ctJS, "/style.css": ctCSS, "/logo.png": ctPNG, "/nope": ctText} {
		resp, body := get(t, c, s.URL(StaticHost, path))
		if got := resp.Header.Get("Content-Type"); got != ct {
			t.Errorf("%s: content type %q, want %q", path, got, ct)
		}
		switch path {
		case "/nope":
			if resp.StatusCode != 404 {
				t.Errorf("%s: status %d", path, resp.StatusCode)
			}
		case "/logo.png":
			if _, err := png.Decode(strings.NewReader(body)); err != nil {
				t.Errorf("logo is not a PNG: %v", err)
			}
		case "/app.js":
			if !strings.Contains(body, "add-to-cart") || !strings.Contains(body, "cart-count") {
				t.Errorf("app.js lacks the cart handler: %q", body)
			}
		}
	}
}

func TestLoginAndCart(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Password: "s3cret"})
	c := pinnedClient(t, s, s.APIIP(), 5*time.Second)
	login := func(body string) (int, string) {
		resp, err := c.Post(s.URL(APIHost, "/v1/login"), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, bad := range []string{`{"user":"a","password":"wrong"}`, `{"user":"a"}`, `{"user":"a","password":"demo-password"}`} {
		if code, _ := login(bad); code != 401 {
			t.Errorf("login %s: %d, want 401", bad, code)
		}
	}
	if code, _ := login(`not json`); code != 400 {
		t.Errorf("login with bad JSON: %d, want 400", code)
	}
	code, body := login(`{"user":"synthetic","password":"s3cret"}`)
	var tok struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		t.Fatalf("login: %d %q", code, body)
	}

	cart := func(auth string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, s.URL(APIHost, "/v1/cart"), nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := cart("Bearer " + tok.Token)
	var got struct {
		Items []struct {
			SKU string
			Qty int
		}
		Total float64
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctJSON || json.Unmarshal([]byte(body), &got) != nil ||
		len(got.Items) != 1 || got.Items[0].SKU != "123" || got.Total != 19.99 {
		t.Errorf("cart: %d %q", resp.StatusCode, body)
	}
	for _, auth := range []string{"", "Bearer nope", "Bearer " + tok.Token + "x", "Basic " + tok.Token} {
		if resp, _ := cart(auth); resp.StatusCode != 401 {
			t.Errorf("cart with %q: %d, want 401", auth, resp.StatusCode)
		}
	}
	resp, body = get(t, c, s.URL(APIHost, "/v1/products"))
	var products []product
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &products) != nil || len(products) != 3 {
		t.Errorf("products: %d %q", resp.StatusCode, body)
	}
}

func TestFaultLatencyRatio(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 42})
	const latency = 40 * time.Millisecond
	if err := s.SetFault("lb2", Fault{Latency: Duration(latency), LatencyRatio: 0.25}); err != nil {
		t.Fatal(err)
	}
	c := pinnedClient(t, s, s.Nodes()[1].IP, 5*time.Second)
	slow := 0
	const n = 200
	for range n {
		start := time.Now()
		resp, _ := get(t, c, s.HTTPURL(WWWHost, "/healthz"))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if time.Since(start) >= latency {
			slow++
		}
	}
	if slow < n*15/100 || slow > n*35/100 {
		t.Errorf("%d of %d requests delayed, want about 25%%", slow, n)
	}

	// Other nodes are unaffected; the domain-wide fault reaches all nodes
	// unless a node has its own.
	fast := pinnedClient(t, s, s.Nodes()[0].IP, 5*time.Second)
	start := time.Now()
	for range 10 {
		get(t, fast, s.HTTPURL(WWWHost, "/healthz"))
	}
	if d := time.Since(start); d >= 10*latency {
		t.Errorf("lb1 took %s for 10 requests; it has no fault", d)
	}
	if err := s.SetFault(WWWHost, Fault{Latency: Duration(latency)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFault("lb2", Fault{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	get(t, fast, s.HTTPURL(WWWHost, "/healthz"))
	if d := time.Since(start); d < latency {
		t.Errorf("www.shop.test latency not applied to lb1: %s", d)
	}
	if err := s.SetFault("lb1", Fault{ErrorRatio: 1}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	resp, _ := get(t, fast, s.HTTPURL(WWWHost, "/healthz"))
	if d := time.Since(start); d >= latency || resp.StatusCode != 503 {
		t.Errorf("lb1's own fault should replace the domain one: %s, status %d", d, resp.StatusCode)
	}
}

func TestFaultJitterAndCancel(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 7})
	if err := s.SetFault(APIHost, Fault{Latency: Duration(100 * time.Millisecond), Jitter: Duration(50 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	c := pinnedClient(t, s, s.APIIP(), 5*time.Second)
	var minD, maxD time.Duration = time.Hour, 0
	for range 10 {
		start := time.Now()
		get(t, c, s.HTTPURL(APIHost, "/v1/products"))
		d := time.Since(start)
		minD, maxD = min(minD, d), max(maxD, d)
	}
	if minD < 50*time.Millisecond || maxD > 1*time.Second || maxD-minD < 5*time.Millisecond {
		t.Errorf("jittered latency range %s..%s, want within 50ms..150ms and varying", minD, maxD)
	}

	// A client that gives up does not wait for the injected latency.
	if err := s.SetFault(APIHost, Fault{Latency: Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	short := pinnedClient(t, s, s.APIIP(), 200*time.Millisecond)
	if _, err := short.Get(s.URL(APIHost, "/v1/products")); err == nil {
		t.Fatal("request with 1h latency succeeded")
	}
}

func TestFaultErrorRatio(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 3})
	if err := s.SetFault("lb3", Fault{ErrorRatio: 0.5}); err != nil {
		t.Fatal(err)
	}
	c := pinnedClient(t, s, s.Nodes()[2].IP, 5*time.Second)
	failed := 0
	const n = 200
	for range n {
		resp, body := get(t, c, s.URL(WWWHost, "/"))
		switch resp.StatusCode {
		case 503:
			failed++
			if body != "service unavailable\n" || resp.Header.Get("Content-Type") != ctText || resp.Header.Get("X-Served-By") != "lb3" {
				t.Fatalf("503 response: %q %q %q", body, resp.Header.Get("Content-Type"), resp.Header.Get("X-Served-By"))
			}
		case 200:
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if failed < n*35/100 || failed > n*65/100 {
		t.Errorf("%d of %d requests failed, want about half", failed, n)
	}
}

func TestFaultRefuse(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	c := pinnedClient(t, s, s.StaticIP(), 5*time.Second)
	// An established keep-alive connection is cut too.
	get(t, c, s.URL(StaticHost, "/app.js"))
	if err := s.SetFault(StaticHost, Fault{Refuse: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(s.URL(StaticHost, "/app.js")); err == nil {
		t.Error("request on a kept-alive connection succeeded under refuse")
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	if _, err := c.Get(s.URL(StaticHost, "/app.js")); err == nil {
		t.Error("HTTPS request succeeded under refuse")
	}

	// The connection itself is refused, on both ports: no accept, no reset.
	for _, port := range []int{s.HTTPSPort(), s.HTTPPort()} {
		conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(s.StaticIP(), uint16(port)).String(), 2*time.Second)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to port %d under refuse: %v, want connection refused", port, err)
		}
	}

	// Other endpoints still work; clearing restores the CDN.
	if resp, _ := get(t, pinnedClient(t, s, s.Nodes()[0].IP, 5*time.Second), s.URL(WWWHost, "/")); resp.StatusCode != 200 {
		t.Errorf("www under CDN refuse: %d", resp.StatusCode)
	}
	s.ClearAll()
	if resp, _ := get(t, c, s.URL(StaticHost, "/app.js")); resp.StatusCode != 200 {
		t.Errorf("after clear: %d", resp.StatusCode)
	}
	// Refused and reopened again, by a node's own fault this time.
	lb2 := s.Nodes()[1].IP
	for range 2 {
		if err := s.SetFault("lb2", Fault{Refuse: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := net.DialTimeout("tcp", netip.AddrPortFrom(lb2, uint16(s.HTTPPort())).String(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("lb2 under refuse: %v, want connection refused", err)
		}
		if err := s.ClearFault("lb2"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := get(t, pinnedClient(t, s, lb2, 5*time.Second), s.HTTPURL(WWWHost, "/")); resp.StatusCode != 200 {
			t.Errorf("lb2 after clear: %d", resp.StatusCode)
		}
	}
}

// TestFaultReset: reset accepts connections and resets them at once, on
// new and kept-alive connections.
func TestFaultReset(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	c := pinnedClient(t, s, s.StaticIP(), 5*time.Second)
	get(t, c, s.URL(StaticHost, "/app.js"))
	if err := s.SetFault(StaticHost, Fault{Reset: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(s.URL(StaticHost, "/app.js")); err == nil {
		t.Error("request on a kept-alive connection succeeded under reset")
	}
	// A raw connection is accepted, then sees a reset, not an orderly
	// close or a hang. (The reset may even beat the end of connect on
	// loopback.)
	conn, err := net.Dial("tcp", netip.AddrPortFrom(s.StaticIP(), uint16(s.HTTPSPort())).String())
	if errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("reset refused the connection: %v", err)
	}
	if err == nil {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read from a reset connection: %v, want connection reset", err)
	}
	s.ClearAll()
	c.Transport.(*http.Transport).CloseIdleConnections()
	if resp, _ := get(t, c, s.URL(StaticHost, "/app.js")); resp.StatusCode != 200 {
		t.Errorf("after clear: %d", resp.StatusCode)
	}
}

func TestFaultStall(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	if err := s.SetFault("lb1", Fault{Stall: true}); err != nil {
		t.Fatal(err)
	}
	c := pinnedClient(t, s, s.Nodes()[0].IP, 300*time.Millisecond)
	for _, u := range []string{s.URL(WWWHost, "/"), s.HTTPURL(WWWHost, "/")} {
		start := time.Now()
		_, err := c.Get(u)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: err %v, want a client timeout", u, err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("%s: gave up after %s, before the client timeout", u, d)
		}
	}
	if resp, _ := get(t, pinnedClient(t, s, s.Nodes()[1].IP, 5*time.Second), s.URL(WWWHost, "/")); resp.StatusCode != 200 {
		t.Errorf("lb2 under lb1 stall: %d", resp.StatusCode)
	}
	// A connection left stalled must not block Close (checked by cleanup).
	conn, err := net.Dial("tcp", netip.AddrPortFrom(s.Nodes()[0].IP, uint16(s.HTTPPort())).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
}

func TestConcurrentFaultChanges(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_ = s.SetFault("lb1", Fault{ErrorRatio: float64(i%2) / 2})
			_ = s.Faults()
		}
	})
	c := pinnedClient(t, s, s.Nodes()[0].IP, 5*time.Second)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := c.Get(s.HTTPURL(WWWHost, "/healthz"))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 503 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestControlEndpoint(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	c := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, s.ControlURL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/", ""); code != 200 || !strings.Contains(body, "curl -X PUT "+s.ControlURL()+"/faults/lb2") {
		t.Errorf("help: %d %q", code, body)
	}
	if code, body := do("PUT", "/faults/lb2", `{"latency":"1.5s","latency_ratio":0.2}`); code != 200 || !strings.Contains(body, `"1.5s"`) {
		t.Errorf("PUT lb2: %d %q", code, body)
	}
	if code, _ := do("PUT", "/faults/static.shop-cdn.test", `{"refuse":true}`); code != 200 {
		t.Errorf("PUT static: %d", code)
	}
	want := map[string]Fault{
		"lb2":      {Latency: Duration(1500 * time.Millisecond), LatencyRatio: 0.2},
		StaticHost: {Refuse: true},
	}
	if got := s.Faults(); len(got) != 2 || got["lb2"] != want["lb2"] || got[StaticHost] != want[StaticHost] {
		t.Errorf("Faults() = %+v", got)
	}
	code, body := do("GET", "/faults", "")
	var listed map[string]Fault
	if code != 200 || json.Unmarshal([]byte(body), &listed) != nil || listed["lb2"] != want["lb2"] || listed[StaticHost] != want[StaticHost] {
		t.Errorf("GET /faults: %d %q", code, body)
	}
	if code, body := do("PUT", "/faults/lb9", `{"refuse":true}`); code != 404 || !strings.Contains(body, `unknown fault target "lb9"`) {
		t.Errorf("unknown target: %d %q", code, body)
	}
	if code, _ := do("DELETE", "/faults/nope.example", ""); code != 404 {
		t.Errorf("DELETE unknown target: %d", code)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"error_ratio":2}`, `{"bogus":1}`, `{"refuse":true,"stall":true}`} {
		if code, _ := do("PUT", "/faults/lb1", bad); code != 400 {
			t.Errorf("PUT %s: %d, want 400", bad, code)
		}
	}
	if code, _ := do("DELETE", "/faults/lb2", ""); code != 204 {
		t.Errorf("DELETE lb2: %d", code)
	}
	if _, ok := s.Faults()["lb2"]; ok {
		t.Error("lb2 fault survived DELETE")
	}
	if code, _ := do("DELETE", "/faults", ""); code != 204 || len(s.Faults()) != 0 {
		t.Errorf("DELETE /faults: %d, left %v", code, s.Faults())
	}
}

func TestParseFault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		target  string
		want    Fault
		wantErr string
	}{
		{in: "lb2:latency=1.5s,latency_ratio=0.2", target: "lb2", want: Fault{Latency: Duration(1500 * time.Millisecond), LatencyRatio: 0.2}},
		{in: "static.shop-cdn.test:refuse", target: StaticHost, want: Fault{Refuse: true}},
		{in: "lb3:error_ratio=0.5", target: "lb3", want: Fault{ErrorRatio: 0.5}},
		{in: "lb1:stall", target: "lb1", want: Fault{Stall: true}},
		{in: "lb2:clear", target: "lb2", want: Fault{}},
		{in: " LB1 : dns_remove ", target: "lb1", want: Fault{DNSRemove: true}},
		{in: "www.shop.test:latency=200ms,jitter=50ms", target: WWWHost, want: Fault{Latency: Duration(200 * time.Millisecond), Jitter: Duration(50 * time.Millisecond)}},
		{in: "lb1:refuse=true", target: "lb1", want: Fault{Refuse: true}},
		{in: "lb1", wantErr: "want TARGET:SPEC"},
		{in: ":refuse", wantErr: "want TARGET:SPEC"},
		{in: "lb1:", wantErr: "empty spec"},
		{in: "lb1:latency", wantErr: "needs a duration"},
		{in: "lb1:latency=fast", wantErr: "invalid duration"},
		{in: "lb1:error_ratio=1.5", wantErr: "between 0 and 1"},
		{in: "lb1:error_ratio=x", wantErr: "invalid number"},
		{in: "lb1:latency=-1s", wantErr: "negative"},
		{in: "lb1:explode", wantErr: "unknown setting"},
		{in: "lb1:refuse,stall", wantErr: "mutually exclusive"},
		{in: "lb1:refuse,reset", wantErr: "mutually exclusive"},
		{in: "static.shop-cdn.test:reset", target: StaticHost, want: Fault{Reset: true}},
		{in: "lb1:clear,refuse", wantErr: "cannot be combined"},
		{in: "lb1:refuse=maybe", wantErr: "invalid boolean"},
		{in: "lb1:refuse=false", wantErr: "no settings"},
	}
	for _, tc := range tests {
		target, f, err := ParseFault(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFault(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || target != tc.target || f != tc.want {
			t.Errorf("ParseFault(%q) = %q, %+v, %v; want %q, %+v", tc.in, target, f, err, tc.target, tc.want)
		}
		// String round-trips through ParseFault.
		if _, f2, err := ParseFault(target + ":" + f.String()); err != nil || f2 != f {
			t.Errorf("round trip of %q via %q: %+v, %v", tc.in, f.String(), f2, err)
		}
	}
}

func TestFaultJSON(t *testing.T) {
	t.Parallel()
	var f Fault
	if err := json.Unmarshal([]byte(`{"latency":0.25,"jitter":"10ms"}`), &f); err != nil || f.Latency != Duration(250*time.Millisecond) || f.Jitter != Duration(10*time.Millisecond) {
		t.Errorf("unmarshal: %+v %v", f, err)
	}
	b, err := json.Marshal(Fault{Latency: Duration(time.Second), Stall: true})
	if err != nil || string(b) != `{"latency":"1s","stall":true}` {
		t.Errorf("marshal: %s %v", b, err)
	}
}
