package netpath

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"golang.org/x/net/proxy"
)

const (
	// maxConnectResponse bounds the proxy's answer to CONNECT.
	maxConnectResponse = 64 << 10
	// maxStatusLen bounds how much of a proxy's status line reaches errors.
	maxStatusLen = 100
)

// proxyDialer reaches targets through an upstream proxy. The connection to
// the proxy itself goes through the path's base dialer.
type proxyDialer struct {
	p        *Path
	redacted string // the proxy URL with its password masked
	addr     string // proxy host:port
	// HTTP(S) CONNECT
	https     bool
	tlsConfig *tls.Config
	authz     string // Proxy-Authorization value, empty without credentials
	// SOCKS5
	socks proxy.ContextDialer
}

func newProxyDialer(p *Path, raw string, tlsConfig *tls.Config) (*proxyDialer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the whole URL, password included.
		return nil, errors.New("proxy: malformed URL (not shown: it may contain credentials)")
	}
	pd := &proxyDialer{p: p, redacted: u.Redacted()}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("proxy %s: missing host", pd.redacted)
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		port = orDefault(port, "80")
	case "https":
		port = orDefault(port, "443")
		pd.https = true
		if tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		pd.tlsConfig = tlsConfig.Clone()
		if pd.tlsConfig.ServerName == "" {
			pd.tlsConfig.ServerName = u.Hostname()
		}
	case "socks5", "socks5h":
		port = orDefault(port, "1080")
	default:
		return nil, fmt.Errorf("proxy %s: scheme %q not supported (http, https, socks5)", pd.redacted, u.Scheme)
	}
	pd.addr = net.JoinHostPort(u.Hostname(), port)

	var user, pass string
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	if pd.https || u.Scheme == "http" {
		if u.User != nil {
			pd.authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		}
		return pd, nil
	}
	var auth *proxy.Auth
	if u.User != nil {
		auth = &proxy.Auth{User: user, Password: pass}
	}
	d, err := proxy.SOCKS5("tcp", pd.addr, auth, baseDialer{p})
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", pd.redacted, err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("proxy %s: SOCKS5 dialer cannot take a context", pd.redacted)
	}
	pd.socks = cd
	return pd, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// baseDialer dials the proxy itself, without the proxy.
type baseDialer struct{ p *Path }

func (b baseDialer) Dial(network, address string) (net.Conn, error) {
	return b.DialContext(context.Background(), network, address)
}

func (b baseDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	return b.p.dialDirect(ctx, b.p.family, false, host, port, address)
}

// dial opens a TCP tunnel to target (host:port, names unresolved).
func (pd *proxyDialer) dial(ctx context.Context, target string) (net.Conn, error) {
	var c net.Conn
	var err error
	if pd.socks != nil {
		c, err = pd.socks.DialContext(ctx, "tcp", target)
	} else {
		c, err = pd.connect(ctx, target)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", pd.redacted, err)
	}
	return c, nil
}

// connect opens an HTTP CONNECT tunnel, also for plain-HTTP targets, so
// the proxy never rewrites what the check sends.
func (pd *proxyDialer) connect(ctx context.Context, target string) (_ net.Conn, err error) {
	c, err := baseDialer{pd.p}.DialContext(ctx, "tcp", pd.addr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	// Cancellation unblocks the handshake by expiring the deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if pd.https {
		tc := tls.Client(c, pd.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("TLS handshake: %w", err))
		}
		c = tc
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if pd.authz != "" {
		req += "Proxy-Authorization: " + pd.authz + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("CONNECT %s: %w", target, err))
	}
	br := bufio.NewReader(&io.LimitedReader{R: c, N: maxConnectResponse})
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("CONNECT %s: reading response: %w", target, shortErr{err}))
	}
	if resp.StatusCode != http.StatusOK {
		status := resp.Status
		if len(status) > maxStatusLen {
			status = status[:maxStatusLen] + "..."
		}
		return nil, fmt.Errorf("CONNECT %s: proxy answered %q", target, status)
	}
	if !stop() {
		return nil, ctx.Err()
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		// The target spoke first and its bytes arrived with the response.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// shortErr bounds an error's text: net/http quotes a malformed header line
// whole, so a proxy could put up to maxConnectResponse bytes of its own
// into every failure reason.
type shortErr struct{ error }

func (e shortErr) Error() string {
	s := e.error.Error()
	if len(s) <= 2*maxStatusLen {
		return s
	}
	cut := 2 * maxStatusLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func (e shortErr) Unwrap() error { return e.error }

// ctxErr reports the context's end rather than the deadline it caused.
func ctxErr(ctx context.Context, err error) error {
	if ce := contextCause(ctx, err); ce != err {
		return fmt.Errorf("%w (%v)", ce, err)
	}
	return err
}

// bufferedConn first returns bytes read ahead with the CONNECT response.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) {
	if b.r != nil {
		if b.r.Buffered() > 0 {
			return b.r.Read(p)
		}
		b.r = nil
	}
	return b.Conn.Read(p)
}
