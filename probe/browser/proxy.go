package browser

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// connRecord is one upstream connection the run's proxy opened (or failed
// to open) for the browser.
type connRecord struct {
	Host    string
	Remote  string // address actually connected to (node, resolved IP or upstream proxy)
	DNS     time.Duration
	Connect time.Duration
	TLS     time.Duration // the proxy's own verification handshake
	HasDNS  bool
	Err     string
	// Cause is what the upstream did, in a customer's words ("connection
	// refused", "connection reset", "timed out", "TLS error"...); empty
	// when the error says nothing more specific.
	Cause string
}

// describe is the record's failure as the request list and reasons show
// it: the host, what it did, and the error.
func (r connRecord) describe() string {
	if r.Err == "" {
		return ""
	}
	if r.Cause == "" || r.Cause == r.Err {
		return r.Host + ": " + r.Err
	}
	return r.Host + ": " + r.Cause + " (" + r.Err + ")"
}

func (r *connRecord) fail(err error) {
	r.Err, r.Cause = err.Error(), upstreamCause(err)
}

// upstreamCause names what the upstream did from a dial, handshake or
// read error: Chromium only sees the proxy, so without this every failure
// would read as the proxy's own (ERR_TUNNEL_CONNECTION_FAILED, a 502).
func upstreamCause(err error) string {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
		alert   tls.AlertError
		recHdr  tls.RecordHeaderError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, errBlocked):
		return "blocked by block_domains"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &alert), errors.As(err, &recHdr):
		return "TLS error"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	return ""
}

// forwardProxy is the per-run HTTP proxy Chromium's browser context uses.
// It dials through the target's path, sends the pin host to the node, and
// refuses tunnels to hosts whose certificate does not verify against the
// check's (or path's) TLS settings: Chromium itself runs with certificate
// errors ignored, so this proxy is the one place certificates are checked.
type forwardProxy struct {
	ln      net.Listener
	srv     *http.Server
	dialer  probeutil.Dialer
	tlsBase *tls.Config
	blocked func(host string) bool
	// verifyTimeout bounds the proxy's own TLS handshake so a stalled
	// server cannot hold a tunnel request for the whole run.
	verifyTimeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	records  []connRecord
	verified map[string]bool // host:port whose certificate verified in this run
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

const maxConnRecords = 500

func newForwardProxy(d probeutil.Dialer, tlsBase *tls.Config, blocked func(string) bool) (*forwardProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("browser proxy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &forwardProxy{
		ln: ln, dialer: d, tlsBase: tlsBase, blocked: blocked,
		verifyTimeout: 10 * time.Second,
		ctx:           ctx, cancel: cancel,
		verified: map[string]bool{},
		conns:    map[net.Conn]struct{}{},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          nil,
	}
	p.wg.Go(func() { _ = p.srv.Serve(ln) })
	return p, nil
}

// Addr is the proxy's listen address (127.0.0.1:port).
func (p *forwardProxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and cuts every tunnel.
func (p *forwardProxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.cancel()
	_ = p.srv.Close()
	p.wg.Wait()
}

// Records returns a copy of the connection records.
func (p *forwardProxy) Records() []connRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]connRecord(nil), p.records...)
}

func (p *forwardProxy) record(r connRecord) {
	p.mu.Lock()
	if len(p.records) < maxConnRecords {
		p.records = append(p.records, r)
	}
	p.mu.Unlock()
}

// track registers c so Close can cut it; false when the proxy is closing.
func (p *forwardProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *forwardProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r)
		return
	}
	p.servePlain(w, r)
}

// dial opens an upstream connection to host:port and records it.
func (p *forwardProxy) dial(ctx context.Context, hostport string) (net.Conn, *connRecord, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, nil, err
	}
	host = strings.ToLower(host)
	rec := &connRecord{Host: host}
	if p.blocked(host) {
		rec.fail(errBlocked)
		return nil, rec, errBlocked
	}
	c, dt, err := p.dialer.Dial(ctx, "tcp", hostport)
	rec.DNS, rec.Connect, rec.HasDNS = dt.DNS, dt.Connect, dt.HasDNS
	if err != nil {
		rec.fail(err)
		return nil, rec, err
	}
	rec.Remote = c.RemoteAddr().String()
	return c, rec, nil
}

var errBlocked = errors.New("blocked by block_domains")

func (p *forwardProxy) serveConnect(w http.ResponseWriter, r *http.Request) {
	hostport := r.Host
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		http.Error(w, "bad CONNECT target", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	up, rec, err := p.dial(ctx, hostport)
	if err != nil {
		if rec != nil {
			p.record(*rec)
		}
		code := http.StatusBadGateway
		if errors.Is(err, errBlocked) {
			code = http.StatusForbidden
		}
		http.Error(w, "vantage proxy: "+err.Error(), code)
		return
	}
	// Verify the certificate once per host:port and run before letting
	// Chromium (which ignores certificate errors) talk to it.
	p.mu.Lock()
	done := p.verified[hostport]
	p.mu.Unlock()
	if !done {
		vStart := time.Now()
		err := p.verify(ctx, up, hostport)
		rec.TLS = time.Since(vStart)
		_ = up.Close()
		if err != nil {
			rec.fail(err)
			p.record(*rec)
			http.Error(w, "vantage proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		p.verified[hostport] = true
		p.mu.Unlock()
		// Reconnect for the tunnel itself: the verified handshake's
		// session cannot be handed to Chromium.
		var rec2 *connRecord
		up, rec2, err = p.dial(ctx, hostport)
		if err != nil {
			rec2.TLS = rec.TLS
			p.record(*rec2)
			http.Error(w, "vantage proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		rec2.TLS = rec.TLS
		rec = rec2
	}
	p.record(*rec)

	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = up.Close()
		http.Error(w, "hijack unsupported", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	client, buf, err := hj.Hijack()
	if err != nil {
		_ = up.Close()
		return
	}
	p.tunnel(client, buf, up, rec.Host)
}

// verify completes a TLS handshake on c as Chromium would for hostport,
// checking the chain and the host name against the configured CA.
func (p *forwardProxy) verify(ctx context.Context, c net.Conn, hostport string) error {
	host, _, _ := net.SplitHostPort(hostport)
	cfg := probeutil.ClientTLS(p.tlsBase, host)
	cfg.NextProtos = []string{"h2", "http/1.1"}
	vctx, cancel := context.WithTimeout(ctx, p.verifyTimeout)
	defer cancel()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(vctx); err != nil {
		return fmt.Errorf("tls %s: %w", host, err)
	}
	return nil
}

// tunnel copies bytes both ways. An upstream that resets the connection
// (or fails otherwise) is recorded, and Chromium's side is reset too, so
// the browser sees a reset rather than an orderly end of the response.
func (p *forwardProxy) tunnel(client net.Conn, buf *bufio.ReadWriter, up net.Conn, host string) {
	if !p.track(client) {
		_ = client.Close()
		_ = up.Close()
		return
	}
	if !p.track(up) {
		p.untrack(client)
		_ = client.Close()
		_ = up.Close()
		return
	}
	defer func() {
		p.untrack(client)
		p.untrack(up)
		_ = client.Close()
		_ = up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() {
		// Bytes the server already buffered after the CONNECT go first.
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			if _, err := up.Write(b); err != nil {
				done <- struct{}{}
				return
			}
		}
		_, _ = io.Copy(up, client)
		closeWrite(up)
		done <- struct{}{}
	}()
	go func() {
		_, err := io.Copy(client, up)
		if err != nil && !errors.Is(err, net.ErrClosed) && upstreamFailed(err) {
			rec := connRecord{Host: host, Remote: up.RemoteAddr().String()}
			rec.fail(err)
			p.record(rec)
			resetConn(client)
		} else {
			closeWrite(client)
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}

// upstreamFailed reports whether err (from copying the upstream's bytes)
// is the upstream's doing rather than the client's or the proxy's close.
func upstreamFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// resetConn closes c with an RST, so the peer sees a reset.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// hopHeaders are removed when forwarding plain HTTP requests.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// servePlain forwards an absolute-form http:// request.
func (p *forwardProxy) servePlain(w http.ResponseWriter, r *http.Request) {
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "vantage proxy: only absolute http:// requests and CONNECT", http.StatusBadRequest)
		return
	}
	hostport := r.URL.Host
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	// The transport dials on its own goroutine, which may outlive RoundTrip.
	var (
		dialMu     sync.Mutex
		dialFailed bool
		remote     string
	)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, rec, err := p.dial(ctx, hostport)
			if rec != nil {
				p.record(*rec)
			}
			dialMu.Lock()
			if err != nil {
				dialFailed = true
			} else {
				remote = c.RemoteAddr().String()
			}
			dialMu.Unlock()
			if err != nil {
				return nil, err
			}
			if !p.track(c) {
				_ = c.Close()
				return nil, errors.New("proxy closing")
			}
			return c, nil
		},
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 0, // the run's deadline bounds it via the request context
	}
	defer tr.CloseIdleConnections()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := tr.RoundTrip(out)
	if err != nil {
		if errors.Is(err, errBlocked) {
			http.Error(w, "vantage proxy: "+err.Error(), http.StatusForbidden)
			return
		}
		dialMu.Lock()
		failedDial, rem := dialFailed, remote
		dialMu.Unlock()
		if !failedDial {
			// Connected, then the upstream failed (reset, closed, timed out).
			rec := connRecord{Host: strings.ToLower(r.URL.Hostname()), Remote: rem}
			rec.fail(err)
			p.record(rec)
		}
		// The domain gave no answer: neither may the proxy. A 502 of its
		// own would count as the domain's HTTP error; a reset makes the
		// request fail in Chromium as it would without a proxy, and the
		// recorded cause says what the domain did.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, herr := hj.Hijack(); herr == nil {
				resetConn(c)
				return
			}
		}
		http.Error(w, "vantage proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
