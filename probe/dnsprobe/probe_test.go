package dnsprobe

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// startServer runs a miekg/dns server on ip, UDP and TCP on the same port,
// and returns that port.
func startServer(t *testing.T, ip string) string {
	t.Helper()
	mux := dns.NewServeMux()
	mux.HandleFunc("www.shop.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, a := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
			rr, _ := dns.NewRR("www.shop.test. 60 IN A " + a)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	mux.HandleFunc("big.shop.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if w.RemoteAddr().Network() == "udp" {
			m.Truncated = true
		} else {
			rr, _ := dns.NewRR("big.shop.test. 60 IN A 127.0.0.99")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	mux.HandleFunc("slow.shop.test.", func(w dns.ResponseWriter, r *dns.Msg) {}) // never answers
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	})

	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		if pc, err = net.ListenPacket("udp", ip+":0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if i == 10 {
			t.Fatal(err)
		}
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: mux}, {Listener: ln, Handler: mux}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
}

func probeOnce(t *testing.T, p *Prober, c *checks.Check, pathCfg checks.Path, node *probe.Node, timeout time.Duration) probe.Outcome {
	t.Helper()
	path, err := netpath.New(pathCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc := *c
	cc.Timeout = model.Duration(timeout) // as the scheduler runs it
	return p.Probe(ctx, &probe.Target{Check: &cc, Path: path, Node: node})
}

func want(t *testing.T, o probe.Outcome, r probe.Result, reason string) {
	t.Helper()
	if o.Result != r || !strings.Contains(o.Reason, reason) || len(o.Steps) != 1 {
		t.Fatalf("got %s %q, want %s containing %q", o.Result, o.Reason, r, reason)
	}
}

func TestQuery(t *testing.T) {
	port := startServer(t, "127.0.0.53")
	server := "127.0.0.53:" + port
	p := New(zerolog.Nop())
	direct := checks.Path{Name: "direct"}
	check := func(name string, e *checks.Expect) *checks.Check {
		return &checks.Check{Type: "dns", Spec: &Config{Query: &Query{Name: name, Type: "A", Server: server}}, Expect: e}
	}

	o := probeOnce(t, p, check("www.shop.test", &checks.Expect{Spec: &Expect{AnswersMin: 3, AnswersContain: []string{"127.0.0.12"}}}), direct, nil, 5*time.Second)
	want(t, o, probe.Success, "")
	if strings.Count(o.Detail, "\n") != 2 || !strings.Contains(o.Detail, "127.0.0.13") || o.Steps[0].Duration <= 0 {
		t.Fatalf("detail %q, step %+v", o.Detail, o.Steps[0])
	}

	want(t, probeOnce(t, p, check("www.shop.test", &checks.Expect{Spec: &Expect{AnswersMin: 4}}), direct, nil, 5*time.Second),
		probe.Failure, "3 A answers, expected at least 4")
	want(t, probeOnce(t, p, check("www.shop.test", &checks.Expect{Spec: &Expect{AnswersContain: []string{"10.1.2.3"}}}), direct, nil, 5*time.Second),
		probe.Failure, `no answer contains "10.1.2.3"`)
	want(t, probeOnce(t, p, check("gone.shop.test", nil), direct, nil, 5*time.Second),
		probe.Failure, "rcode NXDOMAIN, expected NOERROR")
	want(t, probeOnce(t, p, check("gone.shop.test", &checks.Expect{Spec: &Expect{Rcode: "nxdomain"}}), direct, nil, 5*time.Second),
		probe.Success, "")

	// A truncated UDP answer is retried over TCP.
	o = probeOnce(t, p, check("big.shop.test", &checks.Expect{Spec: &Expect{AnswersContain: []string{"127.0.0.99"}}}), direct, nil, 5*time.Second)
	want(t, o, probe.Success, "")

	start := time.Now()
	want(t, probeOnce(t, p, check("slow.shop.test", nil), direct, nil, 200*time.Millisecond),
		probe.Timeout, "timeout after 200ms during query (udp "+server+")")
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

func TestServerSelection(t *testing.T) {
	port := startServer(t, "127.0.0.54")
	p := New(zerolog.Nop())
	c := &checks.Check{Type: "dns", Spec: &Config{Query: &Query{Name: "www.shop.test", Type: "A"}}, Expect: &checks.Expect{Spec: &Expect{AnswersMin: 3}}}

	// The path's resolver.
	o := probeOnce(t, p, c, checks.Path{Name: "public-dns", Resolver: "127.0.0.54:" + port}, nil, 5*time.Second)
	want(t, o, probe.Success, "")
	if o.Steps[0].URL != "127.0.0.54:"+port {
		t.Fatalf("queried %q", o.Steps[0].URL)
	}

	// A pinned node wins over query.server; its port comes from query.server.
	c.Spec.(*Config).Query.Server = "127.0.0.1:" + port
	node := &probe.Node{Name: "ns2", Addr: netip.MustParseAddr("127.0.0.54")}
	want(t, probeOnce(t, p, c, checks.Path{Name: "direct"}, node, 5*time.Second), probe.Success, "")

	// No server anywhere and no resolv.conf is a clear error.
	c.Spec.(*Config).Query.Server = ""
	p.resolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	want(t, probeOnce(t, p, c, checks.Path{Name: "direct"}, nil, time.Second), probe.Error, "no DNS server configured")

	c.Spec.(*Config).Query.Type = "BOGUS"
	want(t, probeOnce(t, p, c, checks.Path{Name: "direct"}, nil, time.Second), probe.Error, `unknown query type "BOGUS"`)
}
