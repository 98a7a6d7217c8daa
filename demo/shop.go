// Package demo is vantage's embedded demo shop: www.shop.test behind three
// load-balancer nodes, an app API (api.shop.test) and a third-party static
// domain (static.shop-cdn.test), served over HTTPS from a CA generated at
// start and over plain HTTP, with an embedded DNS server and run-time fault
// injection. It is both `vantage demo` and the fixture of integration tests
// and benchmarks, so everything listens on loopback with random ports and
// many shops can run side by side.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// endpoint is one shop address: a www node, the API or the CDN.
type endpoint struct {
	idx      int
	target   string // its own fault target: node name or domain
	domain   string // the domain it belongs to (and serves by default)
	ip       netip.Addr
	node     bool
	servedBy []string         // X-Served-By value, shared across responses
	gates    []*faultListener // its HTTPS and HTTP listeners
}

// Shop is a running demo shop. Its methods are safe for concurrent use.
type Shop struct {
	opts      Options
	log       zerolog.Logger
	endpoints []*endpoint
	pki       *pki
	site      *site
	caFile    string
	tmpDir    string

	httpsPort, httpPort int
	dnsAddr             netip.AddrPort
	controlAddr         netip.AddrPort

	faults  atomic.Pointer[faultState]
	faultMu sync.Mutex // serialises writers; readers only Load

	rngMu sync.Mutex
	rng   *mrand.Rand

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
	servers   []*http.Server
	dnsSrv    []*dns.Server

	stallMu sync.Mutex
	stalled map[net.Conn]struct{}

	moved []PortMove
}

// What a PortMove moved.
const (
	MovedHTTPS   = "HTTPS port"
	MovedHTTP    = "HTTP port"
	MovedDNS     = "DNS server"
	MovedControl = "control endpoint"
)

// PortMove is a listener that could not get its preferred address (see
// Options.MoveTakenPorts) and took a random port instead.
type PortMove struct {
	What   string // MovedHTTPS, MovedHTTP, MovedDNS or MovedControl
	Wanted string // the preferred address
	Got    string // the address it listens on instead
	Err    error  // why the preferred one failed
}

// Moved lists the listeners that moved off their preferred address.
func (s *Shop) Moved() []PortMove { return append([]PortMove(nil), s.moved...) }

func joinAddrs(ips []netip.Addr) string {
	parts := make([]string, len(ips))
	for i, ip := range ips {
		parts[i] = ip.String()
	}
	return strings.Join(parts, ", ")
}

// Start generates the CA, binds every listener and starts serving. ctx
// bounds only the start-up; the shop runs until Close.
func Start(ctx context.Context, opts Options) (_ *Shop, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Shop{
		opts:    opts,
		log:     opts.Logger.With().Str("component", "demo").Logger(),
		closing: make(chan struct{}),
		stalled: map[net.Conn]struct{}{},
	}
	seed := opts.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	s.rng = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	var ips []netip.Addr
	for _, n := range opts.Nodes {
		s.addEndpoint(n.Name, WWWHost, n.IP, true, n.Name)
	}
	s.addEndpoint(APIHost, APIHost, opts.APIIP, false, "api")
	s.addEndpoint(StaticHost, StaticHost, opts.StaticIP, false, "cdn")
	for _, ep := range s.endpoints {
		ips = append(ips, ep.ip)
	}
	s.faults.Store(s.buildState(map[string]Fault{}))

	// Everything that may fail happens before any goroutine starts, so a
	// failed Start only has listeners and files to undo.
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	s.pki, err = newPKI(opts.Now(), []string{WWWHost, APIHost, StaticHost}, ips)
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "vantage-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: temporary directory: %w", err)
		}
		s.tmpDir = dir
		cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.caFile, s.pki.caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("demo: writing CA: %w", err)
	}

	closeAll := func(ls []net.Listener) func() {
		return func() {
			for _, l := range ls {
				_ = l.Close()
			}
		}
	}
	// Each listener that cannot get its preferred port may move on its
	// own (MoveTakenPorts): the others keep theirs.
	movePort := func(what, wanted string, fixed bool, err error) bool {
		if !opts.MoveTakenPorts || !fixed || ctx.Err() != nil {
			return false
		}
		s.moved = append(s.moved, PortMove{What: what, Wanted: wanted, Err: err})
		return true
	}
	ipList := func(port int) string {
		return fmt.Sprintf("port %d of %s", port, joinAddrs(ips))
	}
	httpsLs, httpsPort, err := listenAll(ctx, ips, opts.HTTPSPort)
	if err != nil && movePort(MovedHTTPS, ipList(opts.HTTPSPort), opts.HTTPSPort != 0, err) {
		httpsLs, httpsPort, err = listenAll(ctx, ips, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("demo: HTTPS listeners: %w", err)
	}
	cleanup = append(cleanup, closeAll(httpsLs))
	httpLs, httpPort, err := listenAll(ctx, ips, opts.HTTPPort)
	if err != nil && movePort(MovedHTTP, ipList(opts.HTTPPort), opts.HTTPPort != 0, err) {
		httpLs, httpPort, err = listenAll(ctx, ips, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("demo: HTTP listeners: %w", err)
	}
	cleanup = append(cleanup, closeAll(httpLs))
	s.httpsPort, s.httpPort = httpsPort, httpPort

	udp, tcp, err := listenDNS(ctx, opts.DNSAddr)
	if err != nil {
		if ap, perr := netip.ParseAddrPort(opts.DNSAddr); perr == nil && movePort(MovedDNS, opts.DNSAddr, ap.Port() != 0, err) {
			udp, tcp, err = listenDNS(ctx, netip.AddrPortFrom(ap.Addr(), 0).String())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("demo: DNS listener on %s: %w", opts.DNSAddr, err)
	}
	cleanup = append(cleanup, func() { _ = udp.Close(); _ = tcp.Close() })
	s.dnsAddr = tcp.Addr().(*net.TCPAddr).AddrPort()

	ctlL, err := (&net.ListenConfig{}).Listen(ctx, "tcp", opts.ControlAddr)
	if err != nil {
		if host, port, perr := net.SplitHostPort(opts.ControlAddr); perr == nil && movePort(MovedControl, opts.ControlAddr, port != "0", err) {
			ctlL, err = (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("demo: control listener: %w", err)
	}
	cleanup = append(cleanup, func() { _ = ctlL.Close() })
	s.controlAddr = ctlL.Addr().(*net.TCPAddr).AddrPort()
	for i := range s.moved {
		m := &s.moved[i]
		switch m.What {
		case MovedHTTPS:
			m.Got = ipList(s.httpsPort)
		case MovedHTTP:
			m.Got = ipList(s.httpPort)
		case MovedDNS:
			m.Got = s.dnsAddr.String()
		case MovedControl:
			m.Got = s.controlAddr.String()
		}
	}

	tokenKey := make([]byte, 32)
	_, _ = rand.Read(tokenKey)
	s.site, err = newSite(s.URL, opts.Password, tokenKey)
	if err != nil {
		return nil, err
	}

	// From here nothing fails: start serving.
	errLog := log.New(debugWriter{s.log}, "", 0)
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{s.pki.leaf},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	for i, ep := range s.endpoints {
		h := s.handler(ep)
		ep.gates = []*faultListener{newFaultListener(s, i, httpsLs[i]), newFaultListener(s, i, httpLs[i])}
		tlsSrv := newHTTPServer(h, errLog)
		tlsSrv.TLSConfig = tlsConf.Clone()
		s.serve(tlsSrv, func() error { return tlsSrv.ServeTLS(ep.gates[0], "", "") })
		plain := newHTTPServer(h, errLog)
		s.serve(plain, func() error { return plain.Serve(ep.gates[1]) })
	}
	ctl := newHTTPServer(s.controlHandler(), errLog)
	s.serve(ctl, func() error { return ctl.Serve(ctlL) })
	if err := s.startDNS(udp, tcp); err != nil {
		// Unreachable in practice (the sockets are already bound); stop what runs.
		_ = s.Close()
		return nil, err
	}

	s.log.Info().
		Str("dns", s.dnsAddr.String()).
		Int("https_port", s.httpsPort).
		Int("http_port", s.httpPort).
		Str("control", s.ControlURL()).
		Str("ca_file", s.caFile).
		Msg("demo shop started")
	return s, nil
}

func (s *Shop) addEndpoint(target, domain string, ip netip.Addr, node bool, servedBy string) {
	s.endpoints = append(s.endpoints, &endpoint{
		idx: len(s.endpoints), target: target, domain: domain, ip: ip, node: node,
		servedBy: []string{servedBy},
	})
}

func newHTTPServer(h http.Handler, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: injected latency may be long on purpose; handlers
		// are bounded by the request context and by Close instead.
		IdleTimeout:    90 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       errLog,
	}
}

// serve runs fn (a Serve call of srv) in a tracked goroutine.
func (s *Shop) serve(srv *http.Server, fn func() error) {
	s.servers = append(s.servers, srv)
	s.wg.Go(func() {
		if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("demo server stopped")
		}
	})
}

// debugWriter sends net/http's error log (TLS handshake errors from probes
// that hang up, mostly) to debug level: under fault injection they are normal.
type debugWriter struct{ l zerolog.Logger }

func (d debugWriter) Write(p []byte) (int, error) {
	d.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// listenAll binds port on every ip. With port 0 it takes a random port on
// the first address and retries until that port is free on all of them.
func listenAll(ctx context.Context, ips []netip.Addr, port int) ([]net.Listener, int, error) {
	attempts := 1
	if port == 0 {
		attempts = 64
	}
	var lc net.ListenConfig
	var lastErr error
	for range attempts {
		var ls []net.Listener
		p := port
		for _, ip := range ips {
			l, err := lc.Listen(ctx, "tcp4", netip.AddrPortFrom(ip, uint16(p)).String())
			if err != nil {
				lastErr = err
				break
			}
			ls = append(ls, l)
			if p == 0 {
				p = l.Addr().(*net.TCPAddr).Port
			}
		}
		if len(ls) == len(ips) {
			return ls, p, nil
		}
		for _, l := range ls {
			_ = l.Close()
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
	}
	return nil, 0, lastErr
}

// listenDNS binds UDP and TCP on the same address; a random port is retried
// until both protocols get it.
func listenDNS(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("want IP:PORT: %w", err)
	}
	attempts := 1
	if ap.Port() == 0 {
		attempts = 64
	}
	var lc net.ListenConfig
	var lastErr error
	for range attempts {
		pc, err := lc.ListenPacket(ctx, "udp", ap.String())
		if err != nil {
			lastErr = err
			continue
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(ap.Addr(), uint16(port)).String())
		if err == nil {
			return pc, l, nil
		}
		lastErr = err
		_ = pc.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	return nil, nil, lastErr
}

// faultListener is one shop listener with the connection-level faults:
// refuse closes its socket, so the kernel refuses connections (an RST to
// the SYN, ECONNREFUSED for the client) as on a host whose service is down,
// and reopens it on the same address when the fault ends; reset and stall
// act on accepted connections.
type faultListener struct {
	s    *Shop
	idx  int
	addr net.Addr // the bound address, kept across refusals

	mu     sync.Mutex
	ln     net.Listener  // nil while refusing
	reopen chan struct{} // closed when ln is reopened or the listener closes
	closed bool
}

func newFaultListener(s *Shop, idx int, ln net.Listener) *faultListener {
	return &faultListener{s: s, idx: idx, addr: ln.Addr(), ln: ln}
}

func (l *faultListener) Addr() net.Addr { return l.addr }

// Close stops the listener for good (the server's Close calls it).
func (l *faultListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.ln == nil {
		close(l.reopen)
		return nil
	}
	return l.ln.Close()
}

// setRefusing closes the socket (on) or binds it again (off).
func (l *faultListener) setRefusing(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil
	case on && l.ln != nil:
		l.reopen = make(chan struct{})
		err := l.ln.Close()
		l.ln = nil
		return err
	case !on && l.ln == nil:
		ln, err := net.Listen("tcp4", l.addr.String())
		if err != nil {
			return fmt.Errorf("reopening %s after refuse: %w", l.addr, err)
		}
		l.ln = ln
		close(l.reopen)
	}
	return nil
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		ln, wait, closed := l.ln, l.reopen, l.closed
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-wait // refusing: the kernel answers for us
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			l.mu.Lock()
			swapped := l.ln != ln && !l.closed
			l.mu.Unlock()
			if swapped {
				continue // closed by refuse, not by the server
			}
			return nil, err
		}
		f := l.s.faults.Load().eff[l.idx]
		switch {
		case f == nil:
			return c, nil
		case f.Refuse || f.Reset:
			// Refuse: accepted just before the socket closed.
			resetConn(c)
		case f.Stall:
			l.s.stall(c)
		default:
			return c, nil
		}
	}
}

// applyRefusals opens or closes every listener for the refuse faults in
// force. Called with faultMu held.
func (s *Shop) applyRefusals(st *faultState) error {
	var errs []error
	for i, ep := range s.endpoints {
		on := st.eff[i] != nil && st.eff[i].Refuse
		for _, g := range ep.gates {
			if err := g.setRefusing(on); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// resetConn closes c with an RST rather than a FIN, which is what a client
// sees from a dead or refusing node.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// stall holds c open without answering until the client hangs up or the
// shop closes. The client's bytes are read and dropped so its writes never
// block and its hang-up is noticed.
func (s *Shop) stall(c net.Conn) {
	s.stallMu.Lock()
	select {
	case <-s.closing:
		s.stallMu.Unlock()
		_ = c.Close()
		return
	default:
	}
	s.stalled[c] = struct{}{}
	s.stallMu.Unlock()
	s.wg.Go(func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
		s.stallMu.Lock()
		delete(s.stalled, c)
		s.stallMu.Unlock()
		_ = c.Close()
	})
}

// handler serves one endpoint: fault injection, then the site for the
// request's Host (falling back to the endpoint's own domain for bare IPs).
func (s *Shop) handler(ep *endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Served-By"] = ep.servedBy
		if f := s.faults.Load().eff[ep.idx]; f != nil && !s.injectFault(w, r, f) {
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		switch {
		case strings.EqualFold(host, WWWHost):
			s.site.serveWWW(w, r)
		case strings.EqualFold(host, APIHost):
			s.site.serveAPI(w, r)
		case strings.EqualFold(host, StaticHost):
			s.site.serveStatic(w, r)
		case ep.domain == APIHost:
			s.site.serveAPI(w, r)
		case ep.domain == StaticHost:
			s.site.serveStatic(w, r)
		default:
			s.site.serveWWW(w, r)
		}
	})
}

// injectFault applies f to one request and reports whether the normal
// response should follow.
func (s *Shop) injectFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	// Connection-level faults also hit requests on connections accepted
	// before the fault was set (keep-alive, HTTP/2).
	if f.Refuse || f.Reset {
		panic(http.ErrAbortHandler)
	}
	if f.Stall {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		panic(http.ErrAbortHandler)
	}
	var delay time.Duration
	var fail bool
	if f.Latency > 0 || f.Jitter > 0 || f.ErrorRatio > 0 {
		s.rngMu.Lock()
		if f.Latency > 0 || f.Jitter > 0 {
			if f.LatencyRatio == 0 || f.LatencyRatio >= 1 || s.rng.Float64() < f.LatencyRatio {
				delay = time.Duration(f.Latency)
				if f.Jitter > 0 {
					delay += time.Duration((s.rng.Float64()*2 - 1) * float64(f.Jitter))
				}
			}
		}
		if f.ErrorRatio > 0 {
			fail = s.rng.Float64() < f.ErrorRatio
		}
		s.rngMu.Unlock()
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			panic(http.ErrAbortHandler) // the client is gone: nothing to answer
		case <-s.closing:
			t.Stop()
			// Cut the response rather than let net/http send an empty 200.
			panic(http.ErrAbortHandler)
		}
	}
	if fail {
		s.site.unavailable.serve(w, http.StatusServiceUnavailable)
		return false
	}
	return true
}

// Close stops every server, drops open and stalled connections and removes
// the temporary directory (if Start made one). It waits for the goroutines
// the shop started itself; handlers still sleeping on an injected fault
// return at once, so net/http's connection goroutines end right after.
// Safe to call more than once.
func (s *Shop) Close() error {
	s.closeOnce.Do(func() {
		s.stallMu.Lock()
		close(s.closing)
		for c := range s.stalled {
			_ = c.Close()
		}
		s.stallMu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var errs []error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, srv := range s.servers {
			// Not Shutdown: HTTP/2's graceful GOAWAY wait would add a second
			// to every Close. Handlers unblock via s.closing right away.
			_ = srv.Close()
		}
		for _, d := range s.dnsSrv {
			wg.Go(func() {
				if err := d.ShutdownContext(ctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("demo: DNS shutdown: %w", err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		s.wg.Wait()
		if s.tmpDir != "" {
			if err := os.RemoveAll(s.tmpDir); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
		s.log.Info().Msg("demo shop stopped")
	})
	return s.closeErr
}

// CAFile is the path of the CA certificate (PEM) that signed the shop's certificate.
func (s *Shop) CAFile() string { return s.caFile }

// CAPEM is the CA certificate in PEM form.
func (s *Shop) CAPEM() []byte { return append([]byte(nil), s.pki.caPEM...) }

// CAPool is a pool trusting only the shop's CA.
func (s *Shop) CAPool() *x509.CertPool { return s.pki.caPool.Clone() }

// DNSAddr is the DNS server's address (UDP and TCP), e.g. "127.0.0.10:40123".
func (s *Shop) DNSAddr() string { return s.dnsAddr.String() }

// HTTPSPort is the HTTPS port shared by every shop address.
func (s *Shop) HTTPSPort() int { return s.httpsPort }

// HTTPPort is the plain HTTP port shared by every shop address.
func (s *Shop) HTTPPort() int { return s.httpPort }

// ControlURL is the fault-injection endpoint's base URL (no trailing slash).
func (s *Shop) ControlURL() string { return "http://" + s.controlAddr.String() }

// Nodes lists www.shop.test's load-balancer nodes.
func (s *Shop) Nodes() []Node { return append([]Node(nil), s.opts.Nodes...) }

// APIIP and StaticIP are the addresses of the API and the CDN.
func (s *Shop) APIIP() netip.Addr    { return s.opts.APIIP }
func (s *Shop) StaticIP() netip.Addr { return s.opts.StaticIP }

// Password is the API login password.
func (s *Shop) Password() string { return s.opts.Password }

// URL is the HTTPS URL of path on host, with the port omitted when it is 443.
func (s *Shop) URL(host, path string) string {
	return buildURL("https", host, s.httpsPort, 443, path)
}

// HTTPURL is the plain-HTTP URL of path on host (port omitted when 80).
func (s *Shop) HTTPURL(host, path string) string {
	return buildURL("http", host, s.httpPort, 80, path)
}

func buildURL(scheme, host string, port, defPort int, path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if port == defPort {
		return scheme + "://" + host + path
	}
	return scheme + "://" + host + ":" + strconv.Itoa(port) + path
}

// Addr is host:port for TCP checks, e.g. "static.shop-cdn.test:44321".
func (s *Shop) Addr(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(s.httpsPort))
}
