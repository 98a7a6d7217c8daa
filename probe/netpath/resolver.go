package netpath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	// dnsNoDeadline bounds a query whose context has no deadline.
	dnsNoDeadline = 10 * time.Second
	// ednsSize is the UDP payload size advertised (the DNS flag day value).
	ednsSize = 1232
	// maxCNAMEHops bounds CNAME chains followed within one answer.
	maxCNAMEHops = 16
)

// LookupError is a failed lookup through a path's configured resolver.
type LookupError struct {
	Host     string
	Server   string
	NotFound bool // NXDOMAIN, or no record of the wanted type
	Err      error
}

func (e *LookupError) Error() string {
	return "lookup " + e.Host + " via " + e.Server + ": " + e.Err.Error()
}
func (e *LookupError) Unwrap() error { return e.Err }

// Timeout reports whether the server did not answer in time.
func (e *LookupError) Timeout() bool {
	return isTimeout(e.Err)
}

var errNoSuchHost = errors.New("no such host")

// dnsResolver queries one configured server with miekg/dns, through the
// path's base dialer so source_ip and interface apply to DNS too.
type dnsResolver struct {
	p      *Path
	server string // host:port as configured (for messages)
	host   string // server host
	port   string
	ip     netip.Addr    // valid when the server is an IP literal
	byName *net.Resolver // finds the server when it is given by name
}

func newDNSResolver(p *Path, server string) (*dnsResolver, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		// A bare address means the standard port.
		host, port = strings.Trim(server, "[]"), "53"
		server = net.JoinHostPort(host, port)
	}
	if host == "" {
		return nil, fmt.Errorf("resolver %q: missing host", server)
	}
	r := &dnsResolver{p: p, server: server, host: host, port: port}
	if a, err := netip.ParseAddr(host); err == nil {
		r.ip = a.Unmap()
	} else {
		r.byName = &net.Resolver{PreferGo: true, Dial: p.dialBaseLiteral}
	}
	return r, nil
}

// lookup resolves host to addresses of family fam (0: A and AAAA in
// parallel).
func (r *dnsResolver) lookup(ctx context.Context, host string, fam int) ([]netip.Addr, error) {
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.DNSStart != nil {
		trace.DNSStart(httptrace.DNSStartInfo{Host: host})
	}
	addrs, err := r.lookupFamilies(ctx, host, fam)
	if trace != nil && trace.DNSDone != nil {
		info := httptrace.DNSDoneInfo{Err: err}
		for _, a := range addrs {
			info.Addrs = append(info.Addrs, net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()})
		}
		trace.DNSDone(info)
	}
	return addrs, err
}

func (r *dnsResolver) lookupFamilies(ctx context.Context, host string, fam int) ([]netip.Addr, error) {
	if _, ok := dns.IsDomainName(host); !ok || host == "" {
		return nil, &LookupError{Host: host, Server: r.server, NotFound: true, Err: errors.New("invalid host name")}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dnsNoDeadline)
		defer cancel()
	}
	fqdn := dns.Fqdn(host)
	switch fam {
	case 4:
		return r.query(ctx, host, fqdn, dns.TypeA)
	case 6:
		return r.query(ctx, host, fqdn, dns.TypeAAAA)
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		a, err := r.query(ctx, host, fqdn, dns.TypeAAAA)
		ch <- result{a, err}
	}()
	v4, err4 := r.query(ctx, host, fqdn, dns.TypeA)
	v6 := <-ch
	if len(v4)+len(v6.addrs) > 0 {
		return append(v4, v6.addrs...), nil
	}
	// Prefer the more telling error: a timeout or SERVFAIL over "not found".
	var le *LookupError
	if errors.As(err4, &le) && le.NotFound && v6.err != nil {
		return nil, v6.err
	}
	return nil, err4
}

// query asks for one record type over UDP, retrying once, and over TCP
// when the UDP answer is truncated.
func (r *dnsResolver) query(ctx context.Context, host, fqdn string, qtype uint16) ([]netip.Addr, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype)
	m.SetEdns0(ednsSize, false)

	resp, err := r.exchangeUDP(ctx, m)
	if err == nil && resp.Truncated {
		resp, err = r.exchange(ctx, "tcp", m)
	}
	if err != nil {
		return nil, &LookupError{Host: host, Server: r.server, Err: err}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, &LookupError{Host: host, Server: r.server, NotFound: true, Err: errNoSuchHost}
	default:
		return nil, &LookupError{Host: host, Server: r.server,
			Err: fmt.Errorf("server answered %s", dns.RcodeToString[resp.Rcode])}
	}
	addrs := answerAddrs(resp, fqdn, qtype)
	if len(addrs) == 0 {
		return nil, &LookupError{Host: host, Server: r.server, NotFound: true, Err: errNoSuchHost}
	}
	return addrs, nil
}

// exchangeUDP tries twice, giving the first try half the time left, since
// a lost datagram is otherwise only noticed at the deadline.
func (r *dnsResolver) exchangeUDP(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	deadline, _ := ctx.Deadline()
	first, cancel := context.WithTimeout(ctx, time.Until(deadline)/2)
	resp, err := r.exchange(first, "udp", m)
	cancel()
	if err == nil || !isTimeout(err) {
		return resp, err
	}
	if err := contextCause(ctx, err); ctx.Err() != nil || !time.Now().Before(deadline) {
		return nil, err
	}
	m.Id = dns.Id()
	return r.exchange(ctx, "udp", m)
}

func (r *dnsResolver) exchange(ctx context.Context, network string, m *dns.Msg) (*dns.Msg, error) {
	addr := r.server
	if !r.ip.IsValid() {
		// A resolver given by name is itself found via the system resolver.
		ips, err := r.byName.LookupNetIP(ctx, "ip", r.host)
		if err != nil {
			return nil, err
		}
		addr = net.JoinHostPort(ips[0].Unmap().String(), r.port)
	}
	conn, err := r.p.dialBaseLiteral(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns honours the deadline but not cancellation; force it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c := dns.Client{Net: network, Timeout: dnsNoDeadline, UDPSize: ednsSize}
	resp, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn, UDPSize: ednsSize})
	if err != nil {
		return nil, contextCause(ctx, err)
	}
	return resp, nil
}

// contextCause reports a socket timeout that the context's deadline caused
// as that deadline (the socket may notice before the context's timer).
func contextCause(ctx context.Context, err error) error {
	if ce := ctx.Err(); ce != nil {
		return ce
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) && isTimeout(err) {
		return context.DeadlineExceeded
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// answerAddrs collects the records of type qtype for name, following the
// CNAME chain within the answer section.
func answerAddrs(resp *dns.Msg, name string, qtype uint16) []netip.Addr {
	var addrs []netip.Addr
	for hop := 0; hop <= maxCNAMEHops; hop++ {
		next := ""
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			switch v := rr.(type) {
			case *dns.A:
				if qtype == dns.TypeA {
					if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
						addrs = append(addrs, a)
					}
				}
			case *dns.AAAA:
				if qtype == dns.TypeAAAA {
					if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
						addrs = append(addrs, a)
					}
				}
			case *dns.CNAME:
				next = v.Target
			}
		}
		if len(addrs) > 0 || next == "" {
			return addrs
		}
		name = next
	}
	return addrs
}
