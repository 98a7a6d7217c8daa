package netpath

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// targetLog records the host:port targets a test proxy was asked for and
// the addresses its clients came from.
type targetLog struct {
	mu      sync.Mutex
	targets []string
	clients []string
}

func (l *targetLog) add(target, client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.targets = append(l.targets, target)
	l.clients = append(l.clients, client)
}

func (l *targetLog) get() (targets, clients []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.targets), slices.Clone(l.clients)
}

// proxyUpstream maps what a test proxy was asked for to where it connects:
// every *.test name is loopback, so nothing leaves the machine.
func proxyUpstream(target string) (string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(host, ".test") {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", errors.New("test proxy only connects to loopback")
	}
	return net.JoinHostPort(host, port), nil
}

func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}

// connectProxy is an HTTP CONNECT proxy requiring user:pass.
func connectProxy(t *testing.T, user, pass string, useTLS bool) (*httptest.Server, *targetLog) {
	t.Helper()
	log := &targetLog{}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		log.add(r.Host, r.RemoteAddr)
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		up, err := proxyUpstream(r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		uc, err := net.DialTimeout("tcp", up, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		cc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			uc.Close()
			return
		}
		_, _ = io.WriteString(cc, "HTTP/1.1 200 Connection established\r\n\r\n")
		// The target's greeting arrives right after the response; it must
		// not get lost in the client's read-ahead.
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			_, _ = uc.Write(b)
		}
		relay(cc, uc)
	}))
	// Handshakes the tests make fail on purpose need not clutter the log.
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, log
}

// socks5Proxy is a minimal RFC 1928/1929 server requiring user:pass.
func socks5Proxy(t *testing.T, user, pass string) (string, *targetLog) {
	t.Helper()
	ln := testenv.Listen(t, "")
	log := &targetLog{}
	testenv.ServeConns(t, ln, func(c net.Conn) { serveSOCKS5(c, user, pass, log) })
	return ln.Addr().String(), log
}

func serveSOCKS5(c net.Conn, user, pass string, log *targetLog) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	fail := func() { c.Close() }
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(br, hdr); err != nil || hdr[0] != 5 {
		fail()
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil || !slices.Contains(methods, 2) {
		_, _ = c.Write([]byte{5, 0xff})
		fail()
		return
	}
	_, _ = c.Write([]byte{5, 2})
	// Username/password sub-negotiation.
	readStr := func() string {
		n, err := br.ReadByte()
		if err != nil {
			return ""
		}
		b := make([]byte, n)
		_, _ = io.ReadFull(br, b)
		return string(b)
	}
	if v, _ := br.ReadByte(); v != 1 {
		fail()
		return
	}
	u, p := readStr(), readStr()
	if u != user || p != pass {
		_, _ = c.Write([]byte{1, 1})
		fail()
		return
	}
	_, _ = c.Write([]byte{1, 0})
	req := make([]byte, 4)
	if _, err := io.ReadFull(br, req); err != nil || req[1] != 1 {
		fail()
		return
	}
	var host string
	switch req[3] {
	case 1:
		b := make([]byte, 4)
		_, _ = io.ReadFull(br, b)
		host = net.IP(b).String()
	case 4:
		b := make([]byte, 16)
		_, _ = io.ReadFull(br, b)
		host = net.IP(b).String()
	case 3:
		host = readStr()
	}
	pb := make([]byte, 2)
	if _, err := io.ReadFull(br, pb); err != nil {
		fail()
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb))))
	log.add(target, c.RemoteAddr().String())
	up, err := proxyUpstream(target)
	var uc net.Conn
	if err == nil {
		uc, err = net.DialTimeout("tcp", up, 5*time.Second)
	}
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		fail()
		return
	}
	_, _ = c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	_ = c.SetDeadline(time.Time{})
	relay(c, uc)
}

func TestHTTPProxy(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	_, port := splitPort(t, srv)
	proxySrv, log := connectProxy(t, "alice", "s3cret", false)
	proxyURL := "http://alice:s3cret@" + proxySrv.Listener.Addr().String()
	p := mustNew(t, checks.Path{Name: "office-proxy", Proxy: proxyURL, SourceIP: "127.0.0.2"})
	if !p.HasProxy() {
		t.Fatal("HasProxy false")
	}
	target := "www.shop.test:" + port
	if got := peerSeen(t, p, target); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("server saw %q", got)
	}
	// The echo after the greeting works through the tunnel.
	echoThrough(t, p, target)
	targets, clients := log.get()
	if len(targets) == 0 || targets[0] != target {
		t.Errorf("proxy saw targets %v, want %s unresolved", targets, target)
	}
	// The connection to the proxy left from the path's source address.
	if host, _, _ := net.SplitHostPort(clients[0]); host != "127.0.0.2" {
		t.Errorf("proxy client %s, want 127.0.0.2", clients[0])
	}

	bad := mustNew(t, checks.Path{Name: "office-proxy", Proxy: "http://alice:WRONGPASS@" + proxySrv.Listener.Addr().String()})
	_, err := dialT(t, bad, "tcp", target)
	if err == nil || !strings.Contains(err.Error(), "407") || !strings.HasPrefix(err.Error(), `path "office-proxy": proxy http://alice:xxxxx@`) {
		t.Errorf("wrong password: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("error leaks the password: %v", err)
	}
	if _, err := dialT(t, p, "udp", target); err == nil || !strings.Contains(err.Error(), "UDP cannot go through proxy") ||
		strings.Contains(err.Error(), "s3cret") {
		t.Errorf("udp over proxy: err = %v", err)
	}
}

func TestHTTPSProxy(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	_, port := splitPort(t, srv)
	proxySrv, log := connectProxy(t, "bob", "pw", true)
	roots := x509.NewCertPool()
	roots.AddCert(proxySrv.Certificate())
	p, err := build(checks.Path{Name: "tls-proxy", Proxy: "https://bob:pw@" + proxySrv.Listener.Addr().String()},
		&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	target := "api.shop.test:" + port
	echoThrough(t, p, target)
	if targets, _ := log.get(); len(targets) != 1 || targets[0] != target {
		t.Errorf("proxy saw %v", targets)
	}
	// Without the test CA the proxy's certificate is rejected.
	untrusted := mustNew(t, checks.Path{Name: "tls-proxy", Proxy: "https://bob:pw@" + proxySrv.Listener.Addr().String()})
	if _, err := dialT(t, untrusted, "tcp", target); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("untrusted proxy cert: err = %v", err)
	}
}

func TestSOCKS5Proxy(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	_, port := splitPort(t, srv)
	addr, log := socks5Proxy(t, "carol", "hunter2")
	p := mustNew(t, checks.Path{Name: "socks", Proxy: "socks5://carol:hunter2@" + addr, Interface: "lo"})
	target := "www.shop.test:" + port
	echoThrough(t, p, target)
	if targets, _ := log.get(); len(targets) != 1 || targets[0] != target {
		t.Errorf("socks proxy saw %v, want [%s]", targets, target)
	}
	// IP literals pass through as such.
	echoThrough(t, p, srv)

	bad := mustNew(t, checks.Path{Name: "socks", Proxy: "socks5://carol:WRONGPASS@" + addr})
	_, err := dialT(t, bad, "tcp", target)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || !strings.HasPrefix(err.Error(), `path "socks": proxy socks5://carol:xxxxx@`) {
		t.Errorf("wrong password: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestProxyConfigErrors(t *testing.T) {
	for _, raw := range []string{"ftp://u:TOPSECRET@host:21", "http://u:TOPSECRET@:3128", "http://u:TOPSECRET@host:bad port"} {
		_, err := New(checks.Path{Name: "p", Proxy: raw})
		if err == nil || !strings.HasPrefix(err.Error(), `path "p": proxy`) {
			t.Errorf("%s: err = %v", raw, err)
		}
		if err != nil && strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("%s: error leaks the password: %v", raw, err)
		}
	}
	// A proxy that is not listening: a clear dial error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p := mustNew(t, checks.Path{Name: "p", Proxy: "http://" + dead})
	if _, err := dialT(t, p, "tcp", "x.test:80"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dead proxy: err = %v", err)
	}
	// A proxy that never answers is bounded by the context.
	hang, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hang.Close()
	p = mustNew(t, checks.Path{Name: "p", Proxy: "http://" + hang.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.DialContext(ctx, "tcp", "x.test:80"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("hanging proxy: err = %v after %v", err, time.Since(start))
	}
}

func splitPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// echoThrough dials target and checks the greeting and an echo.
func echoThrough(t *testing.T, p *Path, target string) {
	t.Helper()
	c, err := dialT(t, p, "tcp", target)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
}
