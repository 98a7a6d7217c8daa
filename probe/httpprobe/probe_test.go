package httpprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
	"github.com/vantage-monitoring/vantage/probe/probeutil/testcert"
)

func ptr[T any](v T) *T { return &v }

// httpCheck is a single-request check with the loader's defaults filled in.
func httpCheck(url string) *checks.Check {
	return &checks.Check{Name: "t", Type: "http", Spec: &Config{URL: url,
		HTTP: &HTTPRequest{Method: "GET", FollowRedirects: ptr(true), MaxRedirects: 10, MaxBodyBytes: 10 << 20},
	}}
}

// spec is c's http config.
func spec(c *checks.Check) *Config { return c.Spec.(*Config) }

// withSteps is a copy of c whose journey is steps.
func withSteps(c *checks.Check, steps []Step) checks.Check {
	cc, cfg := *c, *spec(c)
	cfg.Steps = steps
	cc.Spec = &cfg
	return cc
}

func newPath(t testing.TB) *netpath.Path {
	t.Helper()
	p, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func probeOnce(t testing.TB, c *checks.Check, timeout time.Duration, mod ...func(*probe.Target)) probe.Outcome {
	t.Helper()
	cc := *c
	cc.Timeout = model.Duration(timeout) // as the scheduler runs it
	tg := &probe.Target{Key: "t/direct/", Check: &cc, Path: newPath(t)}
	for _, m := range mod {
		m(tg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return New(zerolog.Nop()).Probe(ctx, tg)
}

func wantResult(t *testing.T, o probe.Outcome, r probe.Result, reasonPart string) {
	t.Helper()
	if o.Result != r || !strings.Contains(o.Reason, reasonPart) {
		t.Fatalf("got %s %q, want %s containing %q", o.Result, o.Reason, r, reasonPart)
	}
}

func TestSuccessAndPhases(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != "vantage" {
			t.Errorf("User-Agent %q", r.UserAgent())
		}
		time.Sleep(5 * time.Millisecond)
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	o := probeOnce(t, httpCheck(srv.URL), 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if len(o.Steps) != 1 || o.Steps[0].Name != "" || o.Steps[0].StatusCode != 200 {
		t.Fatalf("steps %+v", o.Steps)
	}
	ph := o.Steps[0].Phases
	if ph.HasDNS || ph.HasTLS || ph.Connect <= 0 || ph.Processing < 5*time.Millisecond || ph.Transfer <= 0 {
		t.Fatalf("phases %+v", ph)
	}
	if o.Duration < ph.Processing {
		t.Fatalf("duration %v < processing %v", o.Duration, ph.Processing)
	}

	// A host name is resolved through the path, and that time is reported.
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	o = probeOnce(t, httpCheck(fmt.Sprintf("http://localhost:%d/", port)), 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if !o.Steps[0].Phases.HasDNS || o.Steps[0].Phases.DNS <= 0 {
		t.Fatalf("phases %+v", o.Steps[0].Phases)
	}
}

func TestFreshConnectionPerRun(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := httpCheck(srv.URL)
	p := New(zerolog.Nop())
	tg := &probe.Target{Check: c, Path: newPath(t)}
	for range 3 {
		if o := p.Probe(context.Background(), tg); o.Result != probe.Success || o.Steps[0].Phases.Connect <= 0 {
			t.Fatalf("%+v", o)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections for 3 runs, want 3", n)
	}
}

func TestExpectations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"ok","items":[],"count":"7","nested":{"n":1.5}}`)
		case "/slow":
			time.Sleep(30 * time.Millisecond)
		case "/err":
			w.WriteHeader(500)
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<h1>Lego</h1> Add to cart")
		}
	}))
	defer srv.Close()

	cases := []struct {
		name   string
		path   string
		expect checks.Expect
		result probe.Result
		reason string
	}{
		{"default 2xx", "/err", checks.Expect{}, probe.Failure, "status 500, expected 2xx"},
		{"status list", "/err", checks.Expect{Spec: &Expect{Status: []int{200}}}, probe.Failure, "status 500, expected one of [200]"},
		{"status ok", "/err", checks.Expect{Spec: &Expect{Status: []int{500}}}, probe.Success, ""},
		{"contains", "/", checks.Expect{Spec: &Expect{BodyContains: []string{"Add to cart"}}}, probe.Success, ""},
		{"contains fails", "/", checks.Expect{Spec: &Expect{BodyContains: []string{"Add to cart", "Checkout"}}}, probe.Failure, `body does not contain "Checkout"`},
		{"not contains", "/", checks.Expect{Spec: &Expect{BodyNotContains: []string{"Lego"}}}, probe.Failure, `body contains "Lego"`},
		{"regex", "/", checks.Expect{Spec: &Expect{BodyRegex: []string{`<h1>\w+</h1>`}}}, probe.Success, ""},
		{"regex fails", "/", checks.Expect{Spec: &Expect{BodyRegex: []string{`<h2>`}}}, probe.Failure, `body does not match regex "<h2>"`},
		{"header anchored", "/", checks.Expect{Spec: &Expect{Headers: map[string]string{"Content-Type": "text/html"}}}, probe.Failure, `header "Content-Type": "text/html; charset=utf-8" does not match "text/html"`},
		{"header ok", "/", checks.Expect{Spec: &Expect{Headers: map[string]string{"content-type": "text/html.*"}}}, probe.Success, ""},
		{"header missing", "/", checks.Expect{Spec: &Expect{Headers: map[string]string{"X-Cache": ".*"}}}, probe.Failure, `header "X-Cache" is missing`},
		{"order: status before body", "/err", checks.Expect{Spec: &Expect{BodyContains: []string{"x"}}}, probe.Failure, "status 500"},
		{"max_duration", "/slow", checks.Expect{MaxDuration: model.Duration(10 * time.Millisecond)}, probe.Failure, "exceeds max_duration 10ms"},
		{"tls_min_days without tls", "/", checks.Expect{TLSMinDays: 1}, probe.Failure, "not served over TLS"},
		{"json ok", "/json", checks.Expect{Spec: &Expect{JSON: map[string]JSONExpect{
			"status":   {Eq: "ok"},
			"items.#":  {Gte: ptr(0.0)},
			"count":    {Gt: ptr(5.0), Lte: ptr(7.0)},
			"nested.n": {Eq: 1.5, Ne: 2},
			"missing":  {Exists: ptr(false)},
			"nested":   {Exists: ptr(true), Contains: `"n"`, Regex: `^\{.*\}$`},
		}}}, probe.Success, ""},
		{"json gte", "/json", checks.Expect{Spec: &Expect{JSON: map[string]JSONExpect{"items.#": {Gte: ptr(1.0)}}}}, probe.Failure, `json "items.#": 0 is not >= 1`},
		{"json eq", "/json", checks.Expect{Spec: &Expect{JSON: map[string]JSONExpect{"status": {Eq: "down"}}}}, probe.Failure, `json "status": "ok", expected "down"`},
		{"json exists", "/json", checks.Expect{Spec: &Expect{JSON: map[string]JSONExpect{"token": {Exists: ptr(true)}}}}, probe.Failure, `json "token": missing`},
		{"json not a number", "/json", checks.Expect{Spec: &Expect{JSON: map[string]JSONExpect{"status": {Lt: ptr(1.0)}}}}, probe.Failure, `is not a number`},
		{"json invalid", "/", checks.Expect{Spec: &Expect{JSON: map[string]JSONExpect{"a": {Exists: ptr(true)}}}}, probe.Failure, "body is not valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := httpCheck(srv.URL + tc.path)
			c.Expect = &tc.expect
			wantResult(t, probeOnce(t, c, 5*time.Second), tc.result, tc.reason)
		})
	}
}

func TestRedirects(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/target", http.StatusMovedPermanently)
		default:
			io.WriteString(w, "landed")
		}
	}))
	defer srv.Close()

	wantResult(t, probeOnce(t, httpCheck(srv.URL+"/loop"), 5*time.Second), probe.Error, "stopped after 10 redirects")
	if n := hits.Load(); n != 11 {
		t.Fatalf("%d requests for a redirect loop, want 11", n)
	}

	c := httpCheck(srv.URL + "/moved")
	c.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"landed"}}}
	o := probeOnce(t, c, 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if o.Steps[0].StatusCode != 200 {
		t.Fatalf("status %d", o.Steps[0].StatusCode)
	}

	c = httpCheck(srv.URL + "/moved")
	spec(c).HTTP.FollowRedirects = ptr(false)
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Failure, "status 301, expected 2xx")
	c.Expect = &checks.Expect{Spec: &Expect{Status: []int{301}}}
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Success, "")

	c = httpCheck(srv.URL + "/loop")
	spec(c).HTTP.MaxRedirects = 2
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Error, "stopped after 2 redirects")
}

func TestHostileServers(t *testing.T) {
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer stall.Close()
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer trickle.Close()
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer endless.Close()

	t.Run("stalled response", func(t *testing.T) {
		start := time.Now()
		o := probeOnce(t, httpCheck(stall.URL), 300*time.Millisecond)
		wantResult(t, o, probe.Timeout, "timeout after 300ms during processing")
		if time.Since(start) > 2*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
	})
	t.Run("trickling body", func(t *testing.T) {
		o := probeOnce(t, httpCheck(trickle.URL), 300*time.Millisecond)
		wantResult(t, o, probe.Timeout, "during transfer")
	})
	t.Run("endless body", func(t *testing.T) {
		for _, needBody := range []bool{false, true} {
			c := httpCheck(endless.URL)
			spec(c).HTTP.MaxBodyBytes = 1 << 20
			if needBody {
				c.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"never"}}}
			}
			wantResult(t, probeOnce(t, c, 5*time.Second), probe.Error, "response body exceeds max_body_bytes (1MiB)")
		}
	})
	t.Run("malformed response", func(t *testing.T) {
		ln := testenv.Listen(t, "")
		testenv.ServeConns(t, ln, func(c net.Conn) {
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "SPLAT garbage \x00\x01\r\n\r\n")
		})
		wantResult(t, probeOnce(t, httpCheck("http://"+ln.Addr().String()+"/"), 5*time.Second), probe.Error, "malformed HTTP")
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		wantResult(t, probeOnce(t, httpCheck("http://"+addr+"/"), 5*time.Second), probe.Error, "connection refused")
	})
}

func TestJourney(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), `"user":"synthetic"`) {
			w.WriteHeader(401)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc123", Path: "/"})
		io.WriteString(w, `{"token":"tok-42","user":{"id":7}}`)
	})
	mux.HandleFunc("GET /v1/users/{id}/cart", func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie("session")
		if r.Header.Get("Authorization") != "Bearer tok-42" || err != nil || ck.Value != "abc123" || r.PathValue("id") != "7" {
			w.WriteHeader(403)
			return
		}
		io.WriteString(w, `{"items":[{"sku":"lego"}]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := &checks.Check{Name: "app", Type: "http", Spec: &Config{
		HTTP: &HTTPRequest{Method: "GET", FollowRedirects: ptr(true), MaxRedirects: 10, MaxBodyBytes: 10 << 20},
		Steps: []Step{
			{Name: "login", URL: srv.URL + "/v1/login", Method: "POST",
				Headers: map[string]string{"Content-Type": "application/json"},
				Body:    `{"user":"synthetic","password":"pw"}`,
				Expect:  &checks.Expect{Spec: &Expect{Status: []int{200}, JSON: map[string]JSONExpect{"token": {Exists: ptr(true)}}}},
				Extract: map[string]string{"token": "token", "uid": "user.id"}},
			{Name: "cart", URL: srv.URL + "/v1/users/{{ .uid }}/cart",
				Headers: map[string]string{"Authorization": "Bearer {{ .token }}"},
				Expect:  &checks.Expect{Spec: &Expect{Status: []int{200}, JSON: map[string]JSONExpect{"items.#": {Gte: ptr(1.0)}}}}},
		}}}
	o := probeOnce(t, c, 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if len(o.Steps) != 2 || o.Steps[0].Name != "login" || o.Steps[1].Name != "cart" || o.Steps[1].StatusCode != 200 {
		t.Fatalf("steps %+v", o.Steps)
	}

	// Cookies do not survive into the next run: a run that skips login is refused.
	c2 := withSteps(c, []Step{{Name: "cart-only", URL: srv.URL + "/v1/users/7/cart",
		Headers: map[string]string{"Authorization": "Bearer tok-42"}, Expect: &checks.Expect{Spec: &Expect{Status: []int{200}}}}})
	p := New(zerolog.Nop())
	tg := &probe.Target{Check: c, Path: newPath(t)}
	if o := p.Probe(context.Background(), tg); o.Result != probe.Success {
		t.Fatalf("%+v", o)
	}
	tg.Check = &c2
	wantResult(t, p.Probe(context.Background(), tg), probe.Failure, `step "cart-only": status 403, expected one of [200]`)

	// A failing step stops the journey and is named.
	c3 := withSteps(c, append([]Step(nil), spec(c).Steps...))
	spec(&c3).Steps[0].Body = `{"user":"nobody"}`
	o = probeOnce(t, &c3, 5*time.Second)
	wantResult(t, o, probe.Failure, `step "login": status 401, expected one of [200]`)
	if len(o.Steps) != 1 {
		t.Fatalf("journey went on after a failed step: %+v", o.Steps)
	}

	// A variable no step extracted is named.
	c4 := withSteps(c, append([]Step(nil), spec(c).Steps...))
	spec(&c4).Steps[1].Headers = map[string]string{"Authorization": "Bearer {{ .session_token }}"}
	wantResult(t, probeOnce(t, &c4, 5*time.Second), probe.Failure, `step "cart": variable "session_token" is not set`)

	// An extract path that is absent fails the step that should have provided it.
	c5 := withSteps(c, append([]Step(nil), spec(c).Steps...))
	spec(&c5).Steps[0].Extract = map[string]string{"token": "access_token"}
	wantResult(t, probeOnce(t, &c5, 5*time.Second), probe.Failure, `step "login": extract "token": json path "access_token" not found`)
}

// tlsServer serves handler over TLS with cert on ln.
func tlsServer(t *testing.T, ln net.Listener, cert tls.Certificate, h2 bool, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestTLSCertExpiryAndHTTP2(t *testing.T) {
	ca := testcert.NewCA(t)
	caFile := ca.WriteFile(t)
	notAfter := time.Now().Add(3*24*time.Hour + time.Hour).Truncate(time.Second)
	var proto atomic.Int32
	srv := tlsServer(t, listen(t, "127.0.0.1:0"), ca.Leaf(t, notAfter, "127.0.0.1"), true,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proto.Store(int32(r.ProtoMajor)) }))

	c := httpCheck(srv.URL)
	c.TLS = &config.TLSConfig{CAFile: caFile}
	c.Expect = &checks.Expect{TLSMinDays: 14}
	o := probeOnce(t, c, 5*time.Second)
	wantResult(t, o, probe.Failure, "certificate expires in 3 days, expected at least 14")
	if !o.CertNotAfter.Equal(notAfter) {
		t.Fatalf("CertNotAfter %v, want %v", o.CertNotAfter, notAfter)
	}
	if ph := o.Steps[0].Phases; !ph.HasTLS || ph.TLS <= 0 {
		t.Fatalf("phases %+v", ph)
	}
	if proto.Load() != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2", proto.Load())
	}
	c.Expect.TLSMinDays = 2
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Success, "")

	// The path's TLS settings apply when the check has none; without the CA
	// the certificate is rejected.
	c.TLS = nil
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Error, "certificate")
	path, _ := netpath.New(checks.Path{Name: "p", TLS: &config.TLSConfig{CAFile: caFile}})
	wantResult(t, probeOnce(t, c, 5*time.Second, func(tg *probe.Target) { tg.Path = path }), probe.Success, "")
}

func TestNodePinning(t *testing.T) {
	ca := testcert.NewCA(t)
	caFile := ca.WriteFile(t)
	cert := ca.Leaf(t, time.Now().Add(90*24*time.Hour), "www.shop.test")

	// Two nodes on the same port, as behind a load balancer.
	var ln1, ln2 net.Listener
	for i := 0; ; i++ {
		ln1 = listen(t, "127.0.0.11:0")
		var err error
		ln2, err = net.Listen("tcp", "127.0.0.12:"+strconv.Itoa(ln1.Addr().(*net.TCPAddr).Port))
		if err == nil {
			break
		}
		ln1.Close()
		if i == 10 {
			t.Fatal(err)
		}
	}
	port := strconv.Itoa(ln1.Addr().(*net.TCPAddr).Port)
	type seen struct{ node, host, sni string }
	got := make(chan seen, 10)
	handler := func(node string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- seen{node, r.Host, r.TLS.ServerName}
			io.WriteString(w, "node "+node)
		})
	}
	tlsServer(t, ln1, cert, true, handler("lb1"))
	tlsServer(t, ln2, cert, true, handler("lb2"))

	c := httpCheck("https://www.shop.test:" + port + "/")
	c.Nodes = &checks.Nodes{Resolve: "all"}
	c.TLS = &config.TLSConfig{CAFile: caFile}
	c.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"node lb2"}}}
	node := &probe.Node{Name: "lb2", Addr: netip.MustParseAddr("127.0.0.12")}
	o := probeOnce(t, c, 5*time.Second, func(tg *probe.Target) { tg.Node = node })
	wantResult(t, o, probe.Success, "")
	s := <-got
	if s.node != "lb2" || s.host != "www.shop.test:"+port || s.sni != "www.shop.test" {
		t.Fatalf("request seen as %+v", s)
	}
	if o.Steps[0].Phases.HasDNS {
		t.Fatal("pinned request reported a DNS phase")
	}

	// A redirect to another host leaves the pin and resolves through the path.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "elsewhere") }))
	defer other.Close()
	otherURL := fmt.Sprintf("http://localhost:%d/", other.Listener.Addr().(*net.TCPAddr).Port)
	rc := httpCheck("https://www.shop.test:" + port + "/go")
	rc.TLS = c.TLS
	rc.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"elsewhere"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("/go", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, otherURL, http.StatusFound) })
	ln3 := listen(t, "127.0.0.13:"+port)
	tlsServer(t, ln3, cert, false, mux)
	node3 := &probe.Node{Addr: netip.MustParseAddr("127.0.0.13")}
	o = probeOnce(t, rc, 5*time.Second, func(tg *probe.Target) { tg.Node = node3 })
	wantResult(t, o, probe.Success, "")
	if ph := o.Steps[0].Phases; !ph.HasDNS || !ph.HasTLS {
		t.Fatalf("phases over the redirect %+v", ph)
	}

	// The certificate is still checked against the name: a server_name the
	// certificate does not cover fails verification.
	c.TLS = &config.TLSConfig{CAFile: caFile, ServerName: "wrong.shop.test"}
	wantResult(t, probeOnce(t, c, 5*time.Second, func(tg *probe.Target) { tg.Node = node }), probe.Error, "certificate is valid for www.shop.test")
}

func TestSecretsNeverInReason(t *testing.T) {
	const secret = "s3cr3t-t0ken-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.URL.Query().Get("key"))
		w.WriteHeader(500)
	}))
	defer srv.Close()
	red := checks.NewRedactor()
	red.Add(secret)
	withRedact := func(tg *probe.Target) { tg.Redact = red.Redact }

	check := func(o probe.Outcome) {
		t.Helper()
		if o.Result == probe.Success || o.Reason == "" {
			t.Fatalf("expected a failing run, got %+v", o)
		}
		for _, s := range append([]string{o.Reason}, o.Steps[0].URL, o.Steps[0].Reason) {
			if strings.Contains(s, secret) || strings.Contains(s, "hunter2pw") {
				t.Fatalf("secret leaked: %q", s)
			}
		}
	}
	// In the URL, echoed in a header that fails its expectation.
	c := httpCheck(srv.URL + "/?key=" + secret)
	c.Expect = &checks.Expect{Spec: &Expect{Status: []int{500}, Headers: map[string]string{"X-Echo": "nope"}}}
	o := probeOnce(t, c, 5*time.Second, withRedact)
	check(o)
	if !strings.Contains(o.Reason, checks.Placeholder) {
		t.Fatalf("reason %q should show the placeholder", o.Reason)
	}
	// In an expectation.
	c = httpCheck(srv.URL)
	c.Expect = &checks.Expect{Spec: &Expect{Status: []int{500}, BodyContains: []string{secret}}}
	check(probeOnce(t, c, 5*time.Second, withRedact))
	// In URL userinfo, known to no Redactor, on a network error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	check(probeOnce(t, httpCheck("http://user:hunter2pw@"+addr+"/"), 5*time.Second))
	// In a header of a journey step whose URL is wrong.
	c = &checks.Check{Name: "j", Type: "http", Spec: &Config{HTTP: &HTTPRequest{},
		Steps: []Step{{Name: "a", URL: "http://" + addr + "/" + secret, Headers: map[string]string{"Authorization": secret}}}}}
	check(probeOnce(t, c, 5*time.Second, withRedact))
}

func TestInvalidCheck(t *testing.T) {
	c := httpCheck("http://127.0.0.1:1/")
	c.Expect = &checks.Expect{Spec: &Expect{BodyRegex: []string{"("}}}
	wantResult(t, probeOnce(t, c, time.Second), probe.Error, "invalid check: body_regex")
}

// benchProbe runs c as fast as it goes, failing on the first run that
// does not succeed.
func benchProbe(b *testing.B, c *checks.Check) {
	p := New(zerolog.Nop())
	tg := &probe.Target{Check: c, Path: newPath(b)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		o := p.Probe(ctx, tg)
		cancel()
		if o.Result != probe.Success {
			b.Fatalf("%+v", o)
		}
	}
}

func BenchmarkProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>Add to cart</html>")
	}))
	defer srv.Close()
	c := httpCheck(srv.URL)
	c.Expect = &checks.Expect{Spec: &Expect{Status: []int{200}, BodyContains: []string{"Add to cart"},
		Headers: map[string]string{"Content-Type": "text/html.*"}}}
	benchProbe(b, c)
}

// BenchmarkProbeTLS is BenchmarkProbe over TLS 1.3 to a server that speaks
// HTTP/1.1 only, with an ECDSA leaf signed by a CA from the check's ca_file:
// a full handshake and chain verification per run.
func BenchmarkProbeTLS(b *testing.B) {
	ca := testcert.NewCA(b)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>Add to cart</html>")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(b, time.Now().Add(90*24*time.Hour), "127.0.0.1")}}
	srv.StartTLS()
	defer srv.Close()
	c := httpCheck(srv.URL)
	c.TLS = &config.TLSConfig{CAFile: ca.WriteFile(b)}
	c.Expect = &checks.Expect{Spec: &Expect{Status: []int{200}, BodyContains: []string{"Add to cart"}}}
	benchProbe(b, c)
}
