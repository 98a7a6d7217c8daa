package httpprobe

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Transport is a run's round tripper for HTTP/1.1, plain or over TLS. It
// dials, handshakes, writes the request and reads the response in the
// goroutine of the run, where net/http's Transport starts a dial goroutine,
// a read loop and a write loop for every connection: with a fresh connection
// per run, handing the request and response between those goroutines cost
// more CPU than the request itself. A server that chooses HTTP/2 in the TLS
// handshake gets that connection served by an http.Transport, as does
// everything else this does not do (host names outside ASCII, large request
// bodies), so behaviour stays that of net/http: connections reused within
// the run and never across runs, gzip asked for and decoded, 1xx answers
// skipped, response headers bounded.
//
// RoundTrip is not safe for concurrent use: http.Client calls it from the
// goroutine that called Do, and a run does one request at a time.
type h1Transport struct {
	r     *run
	std   *http.Transport      // for everything else; nil until needed
	idle  []*h1Conn            // connections whose last response was read to the end
	conns map[*h1Conn]struct{} // every open connection, closed when the run ends
	h2    map[string]bool      // addresses whose server chose HTTP/2: std serves them

	// TLS connections dialled for std (the std transport dials from its
	// own goroutine, hence the mutex): pending ones are handed to its next
	// dial of their address; stops unregister their cancellation hooks.
	mu      sync.Mutex
	pending map[string]net.Conn
	stops   []func() bool
}

// Request bodies up to this size are written before the response is read;
// larger ones go to http.Transport, which writes and reads at the same time
// (a server may answer before it has read a large body).
const maxH1Body = 64 << 10

var acceptGzip = []string{"gzip"}

// maxResponseHeaderBytes bounds a response's header block, as
// http.Transport's MaxResponseHeaderBytes does.
const maxResponseHeaderBytes = 256 << 10

type h1Conn struct {
	net.Conn
	addr   string
	br     *bufio.Reader
	bw     *bufio.Writer
	stop   func() bool // unregisters the cancellation hook
	tls    *tls.ConnectionState
	flight *flightConn // under tls: holds the client's Finished for the first request
	limit  int64       // bytes Read may still return; < 0 for no limit
	reused bool        // served a response before
	closed bool
}

// Read enforces the header limit while the response head is read.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.limit < 0 {
		return c.Conn.Read(p)
	}
	if c.limit == 0 {
		return 0, errHeadersTooLong
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.Conn.Read(p)
	c.limit -= int64(n)
	return n, err
}

var errHeadersTooLong = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHeaderBytes)

// longAgo as a deadline fails pending I/O at once.
var longAgo = time.Unix(1, 0)

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	https := req.URL.Scheme == "https"
	if (!https && req.URL.Scheme != "http") || !asciiHost(req.URL.Host) || !asciiHost(req.Host) ||
		(req.Body != nil && req.Body != http.NoBody && (req.ContentLength < 0 || req.ContentLength > maxH1Body)) {
		return t.fallback(req)
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
		if https {
			port = "443"
		}
	}
	addr := net.JoinHostPort(req.URL.Hostname(), port)
	if https && t.h2[addr] {
		return t.fallback(req)
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			closeBody(req)
			return nil, fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				closeBody(req)
				return nil, fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	ctx := req.Context()
	st, _ := ctx.Value(traceKey{}).(*stepTrace)

	// Ask for gzip and decode it, as http.Transport does unless the caller
	// chose an encoding itself. The header is added for the write only
	// (redirects copy the request's headers and must start afresh).
	gz := req.Method != http.MethodHead && req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == ""
	replayable := (req.Body == nil || req.Body == http.NoBody) &&
		(req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodOptions || req.Method == http.MethodTrace)
	for {
		if st != nil {
			st.getConn()
		}
		c, err := t.conn(ctx, addr, https, req.URL.Hostname(), st)
		if err != nil {
			closeBody(req)
			return nil, ctxErr(ctx, err)
		}
		if c.tls != nil && c.tls.NegotiatedProtocol == "h2" {
			// HTTP/2 is net/http's: its transport takes this connection
			// (dialTLSForStd) and serves the address from now on.
			delete(t.conns, c)
			if err := c.flight.release(); err != nil {
				t.closeConn(c)
				closeBody(req)
				return nil, ctxErr(ctx, err)
			}
			c.flight = nil
			t.mu.Lock()
			if t.pending == nil {
				t.pending = make(map[string]net.Conn, 1)
			}
			t.pending[addr] = c.Conn
			t.stops = append(t.stops, c.stop)
			t.mu.Unlock()
			t.putBufs(c)
			if t.h2 == nil {
				t.h2 = make(map[string]bool, 1)
			}
			t.h2[addr] = true
			return t.fallback(req)
		}
		if st != nil {
			st.setPhase("request")
		}
		if gz {
			req.Header["Accept-Encoding"] = acceptGzip
		}
		resp, gotByte, err := t.exchange(c, req, st)
		if gz {
			delete(req.Header, "Accept-Encoding")
		}
		if err == nil {
			resp.Request = req
			resp.TLS = c.tls
			if gz && resp.Header.Get("Content-Encoding") == "gzip" {
				resp.Header.Del("Content-Encoding")
				resp.Header.Del("Content-Length")
				resp.ContentLength = -1
				resp.Uncompressed = true
				resp.Body = &gzipBody{body: resp.Body}
			}
			return resp, nil
		}
		t.closeConn(c)
		// A kept-alive connection the server closed meanwhile: try again on
		// another (in the end a new one), as http.Transport does.
		if c.reused && !gotByte && replayable && ctx.Err() == nil {
			continue
		}
		return nil, ctxErr(ctx, err)
	}
}

// exchange writes req on c and reads the response head.
func (t *h1Transport) exchange(c *h1Conn, req *http.Request, st *stepTrace) (*http.Response, bool, error) {
	if err := req.Write(c.bw); err != nil {
		return nil, false, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, false, err
	}
	if c.flight != nil {
		err := c.flight.release()
		c.flight = nil
		if err != nil {
			return nil, false, err
		}
	}
	if st != nil {
		st.wroteRequest()
	}
	c.limit = maxResponseHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		if c.limit == 0 {
			err = errHeadersTooLong
		}
		return nil, false, err
	}
	if st != nil {
		st.gotFirstByte()
	}
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		var err error
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			if c.limit == 0 {
				err = errHeadersTooLong
			}
			return nil, true, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n1xx >= 5 {
			return nil, true, errors.New("net/http: too many 1xx informational responses")
		}
	}
	c.limit = -1
	keep := !resp.Close && !req.Close && resp.ProtoAtLeast(1, 1) && resp.StatusCode != http.StatusSwitchingProtocols
	b := &h1Body{t: t, c: c, body: resp.Body, keep: keep}
	if resp.Body == http.NoBody {
		b.eof = true
	}
	resp.Body = b
	return resp, true, nil
}

// conn returns an idle connection to addr or dials a new one, with TLS
// for https (offering HTTP/2 as net/http does).
func (t *h1Transport) conn(ctx context.Context, addr string, https bool, host string, st *stepTrace) (*h1Conn, error) {
	for i, c := range t.idle {
		if c.addr == addr && (c.tls != nil) == https {
			t.idle = append(t.idle[:i], t.idle[i+1:]...)
			c.reused = true
			return c, nil
		}
	}
	nc, stop, err := t.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{Conn: nc, addr: addr, limit: -1, stop: stop}
	if https {
		tc, fc, err := t.handshake(nc, host, st)
		if err != nil {
			stop()
			_ = fc.Close()
			return nil, err
		}
		cs := tc.ConnectionState()
		c.Conn, c.tls, c.flight = tc, &cs, fc
	}
	p := t.r.p
	c.br = p.readers.Get().(*bufio.Reader)
	c.br.Reset(c)
	c.bw = p.writers.Get().(*bufio.Writer)
	c.bw.Reset(c.Conn)
	if t.conns == nil {
		t.conns = make(map[*h1Conn]struct{}, 1)
	}
	t.conns[c] = struct{}{}
	return c, nil
}

// dial connects to addr within the run's deadline; stop unregisters the
// hook that fails the connection's I/O when the run is cancelled.
func (t *h1Transport) dial(ctx context.Context, addr string) (net.Conn, func() bool, error) {
	nc, err := t.r.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if !t.r.deadline.IsZero() {
		_ = nc.SetDeadline(t.r.deadline)
	}
	stop := context.AfterFunc(t.r.ctx, func() { _ = nc.SetDeadline(longAgo) })
	return nc, stop, nil
}

// handshake runs the TLS handshake on nc as http.Transport would: the
// run's TLS settings, the URL's host as server name unless they name one,
// HTTP/2 and HTTP/1.1 offered. The connection's deadline and cancellation
// hook bound it (no context: crypto/tls would start a goroutine to watch it).
// The TLS connection runs over the returned flightConn, which still holds
// the client's last handshake flight.
func (t *h1Transport) handshake(nc net.Conn, host string, st *stepTrace) (*tls.Conn, *flightConn, error) {
	cfg := &tls.Config{}
	if t.r.tls != nil {
		cfg = t.r.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"h2", "http/1.1"}
	fc := &flightConn{Conn: nc, corked: true}
	tc := tls.Client(fc, cfg)
	if st != nil {
		st.tlsHandshakeStart()
	}
	err := tc.Handshake()
	if st != nil {
		st.tlsHandshakeDone()
	}
	return tc, fc, err
}

// flightConn holds writes while corked and sends them before the next read,
// or at release. Under TLS it makes the client's Finished and the first
// request one write and one segment, as browsers send them: three write(2)
// calls per TLS probe instead of four, counted with strace. Only the run's own
// goroutine reads and writes while it is corked; HTTP/2, whose read loop
// and writer are separate goroutines, gets it released.
type flightConn struct {
	net.Conn
	corked bool
	buf    []byte
	err    error // of a held write, returned from then on
}

func (c *flightConn) Write(p []byte) (int, error) {
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.err != nil {
		return 0, c.err
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *flightConn) flush() error {
	if c.err == nil && len(c.buf) > 0 {
		_, c.err = c.Conn.Write(c.buf)
		c.buf = c.buf[:0]
	}
	return c.err
}

func (c *flightConn) Read(p []byte) (int, error) {
	if c.corked {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// release sends what is held and stops holding. Once released, the
// connection's fields are read only: HTTP/2 reads and writes it from two
// goroutines.
func (c *flightConn) release() error {
	if !c.corked {
		return nil
	}
	err := c.flush()
	c.corked, c.buf = false, nil
	return err
}

// Close sends what is held first (a TLS alert, say).
func (c *flightConn) Close() error {
	_ = c.release()
	return c.Conn.Close()
}

// dialTLSForStd is the std transport's DialTLSContext: the connection
// already set up for addr, or a new one.
func (t *h1Transport) dialTLSForStd(ctx context.Context, _, addr string) (net.Conn, error) {
	t.mu.Lock()
	nc := t.pending[addr]
	delete(t.pending, addr)
	t.mu.Unlock()
	if nc != nil {
		return nc, nil
	}
	st, _ := ctx.Value(traceKey{}).(*stepTrace)
	nc, stop, err := t.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.stops = append(t.stops, stop)
	t.mu.Unlock()
	host, _, _ := net.SplitHostPort(addr)
	tc, fc, err := t.handshake(nc, host, st)
	if err == nil {
		err = fc.release()
	}
	if err != nil {
		_ = fc.Close()
		return nil, ctxErr(ctx, err)
	}
	return tc, nil
}

func (t *h1Transport) putIdle(c *h1Conn) {
	if len(t.idle) >= 4 { // as MaxIdleConnsPerHost of the fallback
		t.closeConn(c)
		return
	}
	t.idle = append(t.idle, c)
}

func (t *h1Transport) closeConn(c *h1Conn) {
	if c.closed {
		return
	}
	c.closed = true
	c.stop()
	_ = c.Conn.Close()
	delete(t.conns, c)
	for i, ic := range t.idle {
		if ic == c {
			t.idle = append(t.idle[:i], t.idle[i+1:]...)
			break
		}
	}
	// Nothing reads these any more: a body still held fails on c.closed.
	t.putBufs(c)
}

func (t *h1Transport) putBufs(c *h1Conn) {
	c.br.Reset(nil)
	c.bw.Reset(nil)
	t.r.p.readers.Put(c.br)
	t.r.p.writers.Put(c.bw)
	c.br, c.bw = nil, nil
}

// close ends the run's connections.
func (t *h1Transport) close() {
	for c := range t.conns {
		t.closeConn(c)
	}
	if t.std != nil {
		t.std.CloseIdleConnections()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, nc := range t.pending {
		_ = nc.Close()
	}
	for _, stop := range t.stops {
		stop()
	}
}

// fallback sends req through the run's http.Transport, with the phase
// hooks as httptrace calls them.
func (t *h1Transport) fallback(req *http.Request) (*http.Response, error) {
	if t.std == nil {
		t.std = t.r.stdTransport()
		t.std.DialTLSContext = t.dialTLSForStd
	}
	if st, _ := req.Context().Value(traceKey{}).(*stepTrace); st != nil {
		req = req.WithContext(withClientTrace(req.Context(), st))
	}
	return t.std.RoundTrip(req)
}

// h1Body hands the connection back for the next request of the run once
// the body was read to the end, and closes it otherwise (never draining an
// unread body, which may be endless).
type h1Body struct {
	t         *h1Transport
	c         *h1Conn
	body      io.ReadCloser
	eof, keep bool
	done      bool
}

var errBodyClosed = errors.New("http: read on closed response body")

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done || b.c.closed {
		return 0, errBodyClosed
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if b.eof && b.keep && !b.c.closed {
		_ = b.body.Close() // at EOF: nothing left to drain
		b.t.putIdle(b.c)
		return nil
	}
	b.t.closeConn(b.c)
	return nil
}

// gzipBody decodes a gzip response, opening the decoder on the first Read
// so that a bad header is a read error, as with http.Transport.
type gzipBody struct {
	body io.ReadCloser
	zr   *gzip.Reader
	err  error
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		g.zr, g.err = gzip.NewReader(g.body)
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}

func (g *gzipBody) Close() error { return g.body.Close() }

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// ctxErr prefers the context's error, as http.Transport reports a
// cancelled or expired request.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func asciiHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return false
		}
	}
	return true
}
