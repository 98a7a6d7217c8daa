package netpath

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// whoamiServer accepts TCP connections on addr, writes the peer's address
// and a newline, then echoes. It returns host:port.
func whoamiServer(t *testing.T, addr string) string {
	t.Helper()
	ln := testenv.Listen(t, addr)
	testenv.ServeConns(t, ln, func(c net.Conn) {
		_, _ = io.WriteString(c, c.RemoteAddr().String()+"\n")
		_, _ = io.Copy(c, c)
	})
	return ln.Addr().String()
}

// peerSeen dials through p and returns the address the server saw.
func peerSeen(t *testing.T, p *Path, addr string) string {
	t.Helper()
	c, err := dialT(t, p, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}

func dialT(t *testing.T, p *Path, network, addr string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.DialContext(ctx, network, addr)
}

func mustNew(t *testing.T, cfg checks.Path) *Path {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestDirectDial(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	p := mustNew(t, checks.Path{Name: "direct"})
	if p.Name() != "direct" || p.HasProxy() {
		t.Fatalf("Name/HasProxy = %q/%v", p.Name(), p.HasProxy())
	}
	if got := peerSeen(t, p, srv); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("server saw %q", got)
	}
	// The Dialer convenience is the same dialer.
	c, err := p.Dialer()(context.Background(), "tcp4", srv)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A host name goes through the system resolver (localhost is in
	// /etc/hosts, so no DNS traffic leaves the machine).
	_, port, _ := net.SplitHostPort(srv)
	p4 := mustNew(t, checks.Path{Name: "v4", IPVersion: 4})
	if got := peerSeen(t, p4, net.JoinHostPort("localhost", port)); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("via localhost, server saw %q", got)
	}
}

func TestSourceIP(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		p := mustNew(t, checks.Path{Name: "src-" + src, SourceIP: src})
		got := peerSeen(t, p, srv)
		if host, _, _ := net.SplitHostPort(got); host != src {
			t.Errorf("source_ip %s: server saw %s", src, got)
		}
	}
}

func TestSourceIPMissing(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	p := mustNew(t, checks.Path{Name: "isp-b", SourceIP: "198.51.100.7"})
	for _, network := range []string{"tcp", "udp"} {
		_, err := dialT(t, p, network, srv)
		want := `path "isp-b": bind to source 198.51.100.7: cannot assign requested address`
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", network, err, want)
		}
		var pe *Error
		if !errors.As(err, &pe) || pe.Path != "isp-b" {
			t.Errorf("%s: error is not a *netpath.Error for isp-b: %#v", network, err)
		}
	}
	// A source_ip that is not an address can never work: New says so.
	if _, err := New(checks.Path{Name: "bad", SourceIP: "not-an-ip"}); err == nil ||
		!strings.Contains(err.Error(), `path "bad"`) {
		t.Errorf("malformed source_ip: err = %v", err)
	}
}

func TestInterface(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	p := mustNew(t, checks.Path{Name: "lo", Interface: "lo"})
	if got := peerSeen(t, p, srv); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("server saw %q", got)
	}

	bad := mustNew(t, checks.Path{Name: "uplink2", Interface: "does-not-exist0"})
	for _, network := range []string{"tcp", "udp"} {
		_, err := dialT(t, bad, network, srv)
		want := `path "uplink2": bind to interface does-not-exist0: no such device`
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %s", network, err, want)
		}
	}
}

func TestIPVersion(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(srv)
	p6 := mustNew(t, checks.Path{Name: "v6only", IPVersion: 6})
	_, err := dialT(t, p6, "tcp", srv)
	if err == nil || !strings.Contains(err.Error(), `path "v6only": address 127.0.0.1 is IPv4 but the path is IPv6-only`) {
		t.Errorf("v4 literal on v6 path: err = %v", err)
	}
	if _, err := p6.Resolve(context.Background(), "127.0.0.1"); err == nil {
		t.Error("Resolve of a v4 literal on a v6 path succeeded")
	}
	p4 := mustNew(t, checks.Path{Name: "v4only", IPVersion: 4})
	if _, err := dialT(t, p4, "tcp6", "[::1]:"+port); err == nil || !strings.Contains(err.Error(), "IPv4-only") {
		t.Errorf("tcp6 on v4 path: err = %v", err)
	}
	// A source address pins the family.
	ps := mustNew(t, checks.Path{Name: "src4", SourceIP: "127.0.0.2"})
	if _, err := dialT(t, ps, "tcp", "[::1]:"+port); err == nil || !strings.Contains(err.Error(), "source 127.0.0.2 is IPv4") {
		t.Errorf("v6 literal on v4 source: err = %v", err)
	}
	if _, err := New(checks.Path{Name: "x", SourceIP: "127.0.0.2", IPVersion: 6}); err == nil {
		t.Error("source_ip v4 with ip_version 6 accepted")
	}
	if _, err := dialT(t, p4, "sctp", srv); err == nil || !strings.Contains(err.Error(), `unsupported network "sctp"`) {
		t.Errorf("sctp: err = %v", err)
	}
}

func TestResolveLiteral(t *testing.T) {
	p := mustNew(t, checks.Path{Name: "direct"})
	got, err := p.Resolve(context.Background(), "::ffff:10.0.0.1")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("Resolve literal = %v, %v", got, err)
	}
}

func TestDialAllocs(t *testing.T) {
	srv := whoamiServer(t, "127.0.0.1:0")
	p := mustNew(t, checks.Path{Name: "direct"})
	// Warm up, then make sure the literal fast path adds little on top of
	// net.Dialer itself.
	var d net.Dialer
	base := testing.AllocsPerRun(20, func() {
		c, err := d.DialContext(context.Background(), "tcp4", srv)
		if err == nil {
			c.Close()
		}
	})
	ours := testing.AllocsPerRun(20, func() {
		c, err := p.DialContext(context.Background(), "tcp", srv)
		if err == nil {
			c.Close()
		}
	})
	if ours > base*1.2+4 {
		t.Errorf("DialContext allocates %.0f, net.Dialer %.0f", ours, base)
	}
}

func BenchmarkDialContext(b *testing.B) {
	ln := testenv.Listen(b, "")
	testenv.ServeConns(b, ln, func(net.Conn) {})
	p, err := New(checks.Path{Name: "bench", SourceIP: "127.0.0.2"})
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := p.DialContext(ctx, "tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
