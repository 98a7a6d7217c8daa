package netpath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vantage-monitoring/vantage/checks"
)

// dnsServer is a miekg/dns server on UDP and TCP of one loopback address,
// answering from a fixed zone and recording who asked.
type dnsServer struct {
	addr string

	mu      sync.Mutex
	sources []string // remote addresses of UDP queries
	tcp     int      // queries over TCP
}

// zone: name -> records (A, AAAA, CNAME as text). "big.test." is served
// truncated over UDP.
var testZone = map[string][]string{
	"www.shop.test.":   {"www.shop.test. 60 IN A 127.0.0.20", "www.shop.test. 60 IN A 127.0.0.12", "www.shop.test. 60 IN AAAA ::1", "www.shop.test. 60 IN AAAA 2001:db8::2"},
	"v4.shop.test.":    {"v4.shop.test. 60 IN A 127.0.0.1"},
	"v6.shop.test.":    {"v6.shop.test. 60 IN AAAA ::1"},
	"alias.shop.test.": {"alias.shop.test. 60 IN CNAME edge.cdn.test.", "edge.cdn.test. 60 IN CNAME www.shop.test.", "www.shop.test. 60 IN A 127.0.0.20"},
}

func startDNS(t *testing.T, ip string) *dnsServer {
	t.Helper()
	s := &dnsServer{}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		m := new(dns.Msg)
		m.SetReply(req)
		udp := w.LocalAddr().Network() == "udp"
		s.mu.Lock()
		if udp {
			s.sources = append(s.sources, w.RemoteAddr().String())
		} else {
			s.tcp++
		}
		s.mu.Unlock()
		switch {
		case q.Name == "big.test.":
			if udp {
				m.Truncated = true
			} else {
				for i := range 100 {
					rr, _ := dns.NewRR(fmt.Sprintf("big.test. 60 IN A 127.0.%d.%d", i/250, i%250+1))
					m.Answer = append(m.Answer, rr)
				}
			}
		case testZone[q.Name] != nil:
			for _, txt := range testZone[q.Name] {
				rr, err := dns.NewRR(txt)
				if err != nil {
					panic(err)
				}
				if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
					m.Answer = append(m.Answer, rr)
				}
			}
		case q.Name == "servfail.test.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	ln, err := net.Listen("tcp", ip+":"+port)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

func (s *dnsServer) udpSources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sources)
}

func resolveT(t *testing.T, p *Path, host string) ([]netip.Addr, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Resolve(ctx, host)
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestResolver(t *testing.T) {
	s := startDNS(t, "127.0.0.10")
	tests := []struct {
		name string
		ipv  checks.IPVersion
		host string
		want []netip.Addr
	}{
		{"any sorted v4 first", 0, "www.shop.test", addrs("127.0.0.12", "127.0.0.20", "::1", "2001:db8::2")},
		{"ip_version 4", 4, "www.shop.test", addrs("127.0.0.12", "127.0.0.20")},
		{"ip_version 6", 6, "www.shop.test", addrs("::1", "2001:db8::2")},
		{"cname chain", 0, "alias.shop.test", addrs("127.0.0.20")},
		{"fqdn", 0, "v4.shop.test.", addrs("127.0.0.1")},
		{"any with only AAAA", 0, "v6.shop.test", addrs("::1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, checks.Path{Name: "dns", Resolver: s.addr, IPVersion: tc.ipv})
			got, err := resolveT(t, p, tc.host)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Resolve(%s) = %v, %v; want %v", tc.host, got, err, tc.want)
			}
		})
	}
}

func TestResolverErrors(t *testing.T) {
	s := startDNS(t, "127.0.0.10")
	p := mustNew(t, checks.Path{Name: "dns", Resolver: s.addr})
	_, err := resolveT(t, p, "nope.shop.test")
	want := `path "dns": lookup nope.shop.test via ` + s.addr + `: no such host`
	if err == nil || err.Error() != want {
		t.Errorf("NXDOMAIN: err = %v, want %s", err, want)
	}
	var le *LookupError
	if !errors.As(err, &le) || !le.NotFound {
		t.Errorf("NXDOMAIN: not a NotFound *LookupError: %#v", err)
	}
	// No AAAA record on an IPv6-only path: "no such host" too.
	p6 := mustNew(t, checks.Path{Name: "dns6", Resolver: s.addr, IPVersion: 6})
	if _, err := resolveT(t, p6, "v4.shop.test"); err == nil || !strings.HasSuffix(err.Error(), "v4.shop.test via "+s.addr+": no such host") {
		t.Errorf("no AAAA: err = %v", err)
	}
	if _, err := resolveT(t, p, "servfail.test"); err == nil || !strings.Contains(err.Error(), "server answered SERVFAIL") {
		t.Errorf("SERVFAIL: err = %v", err)
	}
}

func TestResolverTCPFallback(t *testing.T) {
	s := startDNS(t, "127.0.0.10")
	p := mustNew(t, checks.Path{Name: "dns", Resolver: s.addr, IPVersion: 4})
	got, err := resolveT(t, p, "big.test")
	if err != nil || len(got) != 100 {
		t.Fatalf("Resolve(big.test) = %d addresses, %v", len(got), err)
	}
	if got[0] != netip.MustParseAddr("127.0.0.1") || !slices.IsSortedFunc(got, netip.Addr.Compare) {
		t.Errorf("not sorted: %v", got[:3])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp != 1 {
		t.Errorf("TCP queries = %d, want 1", s.tcp)
	}
}

func TestResolverTimeout(t *testing.T) {
	// A UDP socket that never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.11:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := mustNew(t, checks.Path{Name: "dead", Resolver: pc.LocalAddr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Resolve(ctx, "www.shop.test")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Resolve took %v with a 300ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `path "dead": lookup www.shop.test via `) {
		t.Errorf("err = %v", err)
	}
	var le *LookupError
	if !errors.As(err, &le) || !le.Timeout() {
		t.Errorf("not a timeout LookupError: %#v", err)
	}
	// Cancellation (no deadline) ends the lookup too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	if _, err := p.Resolve(ctx2, "www.shop.test"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestResolverSourceAndDial(t *testing.T) {
	s := startDNS(t, "127.0.0.10")
	// The query leaves from the path's source address.
	p := mustNew(t, checks.Path{Name: "src", Resolver: s.addr, SourceIP: "127.0.0.3"})
	srv := whoamiServer(t, "127.0.0.20:0")
	_, port, _ := net.SplitHostPort(srv)
	// www.shop.test: 127.0.0.12 (nothing listens: refused) then 127.0.0.20.
	got := peerSeen(t, p, net.JoinHostPort("www.shop.test", port))
	if host, _, _ := net.SplitHostPort(got); host != "127.0.0.3" {
		t.Errorf("server saw %s, want source 127.0.0.3", got)
	}
	srcs := s.udpSources()
	if len(srcs) == 0 {
		t.Fatal("DNS server saw no UDP query")
	}
	for _, src := range srcs {
		if host, _, _ := net.SplitHostPort(src); host != "127.0.0.3" {
			t.Errorf("DNS query came from %s, want 127.0.0.3", src)
		}
	}
	// UDP dial by name from the source address, seen by the DNS server.
	q := mustNew(t, checks.Path{Name: "src2", Resolver: s.addr, SourceIP: "127.0.0.2"})
	c, err := dialT(t, q, "udp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("v4.shop.test.", dns.TypeA)
	dc := &dns.Conn{Conn: c}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := dc.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	if r, err := dc.ReadMsg(); err != nil || len(r.Answer) != 1 {
		t.Fatalf("answer %v, %v", r, err)
	}
	srcs = s.udpSources()
	if host, _, _ := net.SplitHostPort(srcs[len(srcs)-1]); host != "127.0.0.2" {
		t.Errorf("UDP dial came from %s, want 127.0.0.2", srcs[len(srcs)-1])
	}
	// All addresses failing: errors joined, path named.
	_, err = dialT(t, p, "tcp", "www.shop.test:1")
	if err == nil || !strings.HasPrefix(err.Error(), `path "src": dial www.shop.test:1 (2 addresses): `) ||
		!strings.Contains(err.Error(), "127.0.0.12:1") || !strings.Contains(err.Error(), "127.0.0.20:1") {
		t.Errorf("all fail: err = %v", err)
	}
}

func TestResolverTrace(t *testing.T) {
	s := startDNS(t, "127.0.0.10")
	srv := whoamiServer(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(srv)
	p := mustNew(t, checks.Path{Name: "dns", Resolver: s.addr})
	var starts []string
	var done []httptrace.DNSDoneInfo
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		DNSStart: func(i httptrace.DNSStartInfo) { starts = append(starts, i.Host) },
		DNSDone:  func(i httptrace.DNSDoneInfo) { done = append(done, i) },
	})
	c, err := p.DialContext(ctx, "tcp", net.JoinHostPort("v4.shop.test", port))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !slices.Equal(starts, []string{"v4.shop.test"}) || len(done) != 1 || len(done[0].Addrs) != 1 || done[0].Addrs[0].String() != "127.0.0.1" {
		t.Errorf("trace: starts %v, done %+v", starts, done)
	}
}
