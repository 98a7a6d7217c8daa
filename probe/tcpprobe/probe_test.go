package tcpprobe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
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

func probeOnce(t *testing.T, c *checks.Check, node *probe.Node, timeout time.Duration) probe.Outcome {
	t.Helper()
	path, err := netpath.New(checks.Path{Name: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc := *c
	cc.Timeout = model.Duration(timeout) // as the scheduler runs it
	return New(zerolog.Nop()).Probe(ctx, &probe.Target{Check: &cc, Path: path, Node: node})
}

func want(t *testing.T, o probe.Outcome, r probe.Result, reason string) {
	t.Helper()
	if o.Result != r || !strings.Contains(o.Reason, reason) || len(o.Steps) != 1 || o.Steps[0].Result != r {
		t.Fatalf("got %s %q (%d steps), want %s containing %q", o.Result, o.Reason, len(o.Steps), r, reason)
	}
}

// serve accepts connections on ln, completing a TLS handshake when cert is set.
func serve(t *testing.T, ln net.Listener, cert *tls.Certificate) {
	t.Helper()
	testenv.ServeConns(t, ln, func(c net.Conn) {
		if cert != nil {
			_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}}).Handshake()
		}
	})
}

func TestConnect(t *testing.T) {
	ln := testenv.Listen(t, "127.0.0.1:0")
	serve(t, ln, nil)
	o := probeOnce(t, &checks.Check{Type: "tcp", Spec: &Config{Address: ln.Addr().String()}}, nil, 5*time.Second)
	want(t, o, probe.Success, "")
	if ph := o.Steps[0].Phases; ph.Connect <= 0 || ph.HasDNS || ph.HasTLS {
		t.Fatalf("phases %+v", ph)
	}

	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	o = probeOnce(t, &checks.Check{Type: "tcp", Spec: &Config{Address: "localhost:" + port}}, nil, 5*time.Second)
	want(t, o, probe.Success, "")
	if !o.Steps[0].Phases.HasDNS {
		t.Fatalf("no DNS phase for a host name: %+v", o.Steps[0].Phases)
	}

	closed := testenv.Listen(t, "127.0.0.1:0")
	addr := closed.Addr().String()
	closed.Close()
	want(t, probeOnce(t, &checks.Check{Type: "tcp", Spec: &Config{Address: addr}}, nil, 5*time.Second), probe.Error, "connection refused")
	want(t, probeOnce(t, &checks.Check{Type: "tcp", Spec: &Config{Address: "no-port"}}, nil, time.Second), probe.Error, "invalid address")
}

func TestPinnedNode(t *testing.T) {
	ln := testenv.Listen(t, "127.0.0.12:0")
	serve(t, ln, nil)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	node := &probe.Node{Name: "lb2", Addr: netip.MustParseAddr("127.0.0.12")}
	o := probeOnce(t, &checks.Check{Type: "tcp", Spec: &Config{Address: "www.shop.test:" + port}}, node, 5*time.Second)
	want(t, o, probe.Success, "")
	if o.Steps[0].Phases.HasDNS {
		t.Fatal("pinned connection reported DNS")
	}
}

func TestTLSHandshake(t *testing.T) {
	ca := testcert.NewCA(t)
	caFile := ca.WriteFile(t)
	notAfter := time.Now().Add(3*24*time.Hour + time.Hour).Truncate(time.Second)
	cert := ca.Leaf(t, notAfter, "cdn.shop.test")
	ln := testenv.Listen(t, "127.0.0.1:0")
	serve(t, ln, &cert)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	node := &probe.Node{Addr: netip.MustParseAddr("127.0.0.1")}

	c := &checks.Check{Type: "tcp", Spec: &Config{Address: "cdn.shop.test:" + port, TLSHandshake: true},
		TLS: &config.TLSConfig{CAFile: caFile}, Expect: &checks.Expect{TLSMinDays: 14}}
	o := probeOnce(t, c, node, 5*time.Second)
	want(t, o, probe.Failure, "certificate expires in 3 days, expected at least 14")
	if !o.CertNotAfter.Equal(notAfter) || !o.Steps[0].Phases.HasTLS {
		t.Fatalf("CertNotAfter %v, phases %+v", o.CertNotAfter, o.Steps[0].Phases)
	}
	c.Expect.TLSMinDays = 3
	want(t, probeOnce(t, c, node, 5*time.Second), probe.Success, "")

	// Untrusted CA and wrong name are errors.
	c.TLS = nil
	want(t, probeOnce(t, c, node, 5*time.Second), probe.Error, "certificate signed by unknown authority")
	c.TLS = &config.TLSConfig{CAFile: caFile, ServerName: "other.test"}
	want(t, probeOnce(t, c, node, 5*time.Second), probe.Error, "not other.test")
}

func TestTLSTimeout(t *testing.T) {
	// Accepts but never answers the ClientHello.
	ln := testenv.Listen(t, "127.0.0.1:0")
	testenv.ServeConns(t, ln, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	c := &checks.Check{Type: "tcp", Spec: &Config{Address: ln.Addr().String(), TLSHandshake: true}}
	start := time.Now()
	want(t, probeOnce(t, c, nil, 200*time.Millisecond), probe.Timeout, "timeout after 200ms during tls")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}
