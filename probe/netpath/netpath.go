// Package netpath implements network paths: one dialer per configured path
// holding its source address, interface, proxy, resolver and IP version.
// Every check kind dials through a Path so a path means the same thing for
// HTTP, TCP, DNS and browser traffic.
package netpath

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

// Error is any failure of a path operation; it names the path.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("path %q: %v", e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Path is a ready-to-use network path. Safe for concurrent use.
type Path struct {
	cfg    checks.Path
	name   string
	family int        // 0 (any), 4 or 6: ip_version narrowed by source_ip
	source netip.Addr // invalid when unset
	tcp    net.Dialer // base dialers: source address and interface applied
	udp    net.Dialer
	sys    *net.Resolver // used when the path has no `resolver`
	dns    *dnsResolver  // used when it has one
	proxy  *proxyDialer  // nil without proxy
}

// New builds a Path. It fails only on settings that can never work (a
// malformed proxy URL); a missing source address or interface shows up as a
// dial error on every run of this path, leaving other paths alone.
func New(cfg checks.Path) (*Path, error) {
	p, err := build(cfg, nil)
	if err != nil {
		return nil, &Error{Path: cfg.Name, Err: err}
	}
	return p, nil
}

// build is New with an optional TLS config for https:// proxies (tests use
// it to trust their own proxy certificate).
func build(cfg checks.Path, proxyTLS *tls.Config) (*Path, error) {
	p := &Path{cfg: cfg, name: cfg.Name}
	switch cfg.IPVersion {
	case 0, 4, 6:
		p.family = int(cfg.IPVersion)
	default:
		return nil, fmt.Errorf("ip_version %d: want 4, 6 or any", cfg.IPVersion)
	}
	// A probe's connection lives for one run, seconds at most: TCP
	// keep-alive never fires on it, and enabling it costs four setsockopt
	// calls per connection.
	p.tcp.KeepAlive = -1
	if cfg.SourceIP != "" {
		src, err := netip.ParseAddr(cfg.SourceIP)
		if err != nil {
			return nil, fmt.Errorf("source_ip %q is not an IP address", cfg.SourceIP)
		}
		src = src.Unmap()
		fam := familyOf(src)
		if p.family != 0 && p.family != fam {
			return nil, fmt.Errorf("source_ip %s is IPv%d but ip_version is %d", src, fam, p.family)
		}
		// A source address pins the family: an IPv4 source can never reach
		// an IPv6 destination, so such addresses are not even resolved.
		p.family = fam
		p.source = src
		ap := netip.AddrPortFrom(src, 0)
		p.tcp.LocalAddr = net.TCPAddrFromAddrPort(ap)
		p.udp.LocalAddr = net.UDPAddrFromAddrPort(ap)
	}
	if cfg.Interface != "" {
		ctl := bindToDevice(cfg.Interface)
		p.tcp.Control = ctl
		p.udp.Control = ctl
	}
	if cfg.Resolver != "" {
		r, err := newDNSResolver(p, cfg.Resolver)
		if err != nil {
			return nil, err
		}
		p.dns = r
	} else {
		p.sys = &net.Resolver{PreferGo: true}
		if cfg.SourceIP != "" || cfg.Interface != "" {
			// The system's name servers are reached over the path too.
			p.sys.Dial = p.dialBaseLiteral
		}
	}
	if cfg.Proxy != "" {
		pd, err := newProxyDialer(p, cfg.Proxy, proxyTLS)
		if err != nil {
			return nil, err
		}
		p.proxy = pd
	}
	return p, nil
}

// Name is the `path` label.
func (p *Path) Name() string { return p.name }

// Config is the path's configuration.
func (p *Path) Config() checks.Path { return p.cfg }

// HasProxy reports whether connections go through an upstream proxy, in
// which case names are resolved by the proxy, not locally.
func (p *Path) HasProxy() bool { return p.proxy != nil }

// Dialer returns DialContext as a function value, the shape http.Transport
// and friends expect.
func (p *Path) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.DialContext
}

// Close releases the path's resources. A Path holds no long-lived
// connections today; Close exists so callers need not change if it does.
func (p *Path) Close() error { return nil }

// Resolve looks host up through the path's resolver (or the system's),
// keeping only the path's IP version. An IP literal resolves to itself.
// Addresses come sorted: IPv4 before IPv6, then numerically.
func (p *Path) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if err := p.checkFamily(a, p.family); err != nil {
			return nil, &Error{Path: p.name, Err: err}
		}
		return []netip.Addr{a}, nil
	}
	addrs, err := p.resolve(ctx, host, p.family)
	if err != nil {
		return nil, &Error{Path: p.name, Err: err}
	}
	return addrs, nil
}

// resolve looks a host name up, returning only family fam (0: both).
func (p *Path) resolve(ctx context.Context, host string, fam int) ([]netip.Addr, error) {
	var addrs []netip.Addr
	var err error
	if p.dns != nil {
		addrs, err = p.dns.lookup(ctx, host, fam)
	} else {
		network := "ip"
		switch fam {
		case 4:
			network = "ip4"
		case 6:
			network = "ip6"
		}
		addrs, err = p.sys.LookupNetIP(ctx, network, host)
	}
	if err != nil {
		return nil, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	// Compare orders by bit length first, so IPv4 sorts before IPv6.
	slices.SortStableFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("lookup %s: no address", host)
	}
	return addrs, nil
}

// DialContext connects to address (host:port) over this path. network is
// tcp, tcp4, tcp6, udp, udp4 or udp6. A host name is resolved with Resolve
// unless the path has a proxy, and its addresses are tried in order.
func (p *Path) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := p.dial(ctx, network, address)
	if err != nil {
		return nil, &Error{Path: p.name, Err: err}
	}
	return c, nil
}

func (p *Path) dial(ctx context.Context, network, address string) (net.Conn, error) {
	fam, udp, err := p.networkFamily(network)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if p.proxy != nil {
		if udp {
			return nil, fmt.Errorf("dial %s %s: UDP cannot go through proxy %s", network, address, p.proxy.redacted)
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if err := p.checkFamily(a.Unmap(), fam); err != nil {
				return nil, err
			}
		}
		return p.proxy.dial(ctx, address)
	}
	return p.dialDirect(ctx, fam, udp, host, port, address)
}

// dialDirect dials without the proxy, through the base dialer.
func (p *Path) dialDirect(ctx context.Context, fam int, udp bool, host, port, address string) (net.Conn, error) {
	d := &p.tcp
	if udp {
		d = &p.udp
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if err := p.checkFamily(a, fam); err != nil {
			return nil, err
		}
		c, err := d.DialContext(ctx, netName(udp, familyOf(a)), address)
		if err != nil {
			return nil, p.dialError(err)
		}
		return c, nil
	}
	addrs, err := p.resolve(ctx, host, fam)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, a := range addrs {
		actx, cancel := attemptContext(ctx, len(addrs)-i)
		c, err := d.DialContext(actx, netName(udp, familyOf(a)), net.JoinHostPort(a.String(), port))
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, p.dialError(err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("dial %s (%d addresses): %w", address, len(addrs), errors.Join(errs...))
}

// dialBaseLiteral dials an ip:port through the base dialer; the system
// resolver uses it to reach its name servers.
func (p *Path) dialBaseLiteral(ctx context.Context, network, address string) (net.Conn, error) {
	d := &p.tcp
	if network == "udp" || network == "udp4" || network == "udp6" {
		d = &p.udp
	}
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, p.dialError(err)
	}
	return c, nil
}

// attemptContext gives one of n remaining addresses its share of the
// deadline, like net.Dialer does, so one black-holed address cannot eat
// the whole budget.
func attemptContext(ctx context.Context, remaining int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok || remaining <= 1 {
		return ctx, func() {}
	}
	left := time.Until(deadline)
	share := left / time.Duration(remaining)
	const saneMinimum = 2 * time.Second
	if share < saneMinimum {
		share = min(saneMinimum, left)
	}
	return context.WithTimeout(ctx, share)
}

// dialError turns the kernel's answers to a bad source address or
// interface into errors that say what is wrong with the path.
func (p *Path) dialError(err error) error {
	var be *bindError
	if errors.As(err, &be) {
		return be
	}
	var se *os.SyscallError
	if p.source.IsValid() && errors.As(err, &se) && se.Syscall == "bind" {
		return fmt.Errorf("bind to source %s: %w", p.source, se.Err)
	}
	return err
}

// bindError is a failure to bind a socket to the path's interface.
type bindError struct {
	iface string
	err   error
}

func (e *bindError) Error() string { return "bind to interface " + e.iface + ": " + e.err.Error() }
func (e *bindError) Unwrap() error { return e.err }

func (p *Path) networkFamily(network string) (fam int, udp bool, err error) {
	var want int
	switch network {
	case "tcp":
	case "tcp4":
		want = 4
	case "tcp6":
		want = 6
	case "udp":
		udp = true
	case "udp4":
		want, udp = 4, true
	case "udp6":
		want, udp = 6, true
	default:
		return 0, false, fmt.Errorf("unsupported network %q", network)
	}
	switch {
	case want == 0:
		return p.family, udp, nil
	case p.family == 0 || p.family == want:
		return want, udp, nil
	default:
		return 0, false, fmt.Errorf("network %s on an IPv%d-only path", network, p.family)
	}
}

func (p *Path) checkFamily(a netip.Addr, fam int) error {
	if fam == 0 || familyOf(a) == fam {
		return nil
	}
	if p.source.IsValid() && p.cfg.IPVersion == 0 {
		return fmt.Errorf("address %s is IPv%d but source %s is IPv%d", a, familyOf(a), p.source, fam)
	}
	return fmt.Errorf("address %s is IPv%d but the path is IPv%d-only", a, familyOf(a), fam)
}

func familyOf(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return 4
	}
	return 6
}

func netName(udp bool, fam int) string {
	switch {
	case udp && fam == 4:
		return "udp4"
	case udp:
		return "udp6"
	case fam == 4:
		return "tcp4"
	default:
		return "tcp6"
	}
}
