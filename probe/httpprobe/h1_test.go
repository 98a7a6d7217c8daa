package httpprobe

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil/testcert"
)

// countConns starts srv counting the connections it accepts.
func countConns(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	return &n
}

func TestConnectionReusedWithinRun(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusFound)
			return
		}
		io.WriteString(w, "page "+r.URL.Path)
	}))
	conns := countConns(srv)
	defer srv.Close()

	c := &checks.Check{Name: "j", Type: "http",
		Spec: &Config{HTTP: &HTTPRequest{Method: "GET", FollowRedirects: ptr(true), MaxRedirects: 10, MaxBodyBytes: 10 << 20},
			Steps: []Step{
				{Name: "one", URL: srv.URL + "/old", Expect: &checks.Expect{Spec: &Expect{BodyContains: []string{"page /new"}}}},
				{Name: "two", URL: srv.URL + "/two", Expect: &checks.Expect{Spec: &Expect{BodyContains: []string{"page /two"}}}},
			}}}
	o := probeOnce(t, c, 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for one run of two steps and a redirect, want 1", n)
	}
	if o.Steps[0].Phases.Connect <= 0 || o.Steps[1].Phases.Connect != 0 {
		t.Fatalf("connect phases %v, %v: want the first step only to connect", o.Steps[0].Phases.Connect, o.Steps[1].Phases.Connect)
	}
	// The next run connects afresh.
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Success, "")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after two runs, want 2", n)
	}
}

func TestGzipAskedForAndDecoded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ae" {
			io.WriteString(w, "accept-encoding="+r.Header.Get("Accept-Encoding"))
			return
		}
		if r.Header.Get("Accept-Encoding") != "gzip" {
			io.WriteString(w, "plain")
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "decoded gzip body")
		zw.Close()
	}))
	defer srv.Close()

	c := httpCheck(srv.URL + "/")
	c.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"decoded gzip body"}}}
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Success, "")

	// An encoding the check asks for itself is sent as it is.
	c = httpCheck(srv.URL + "/ae")
	c.Spec.(*Config).HTTP.Headers = map[string]string{"Accept-Encoding": "identity"}
	c.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"accept-encoding=identity"}}}
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Success, "")
}

// A kept-alive connection that the server closed after its answer is
// replaced by a new one for the next step, as a browser would.
func TestClosedKeepAliveConnectionRetried(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body := "hello " + req.URL.Path
				// Keep-alive promised, then the connection closed anyway.
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			}()
		}
	}()
	base := "http://" + ln.Addr().String()
	c := &checks.Check{Name: "j", Type: "http",
		Spec: &Config{HTTP: &HTTPRequest{Method: "GET", FollowRedirects: ptr(true), MaxRedirects: 10, MaxBodyBytes: 10 << 20},
			Steps: []Step{
				{Name: "one", URL: base + "/one", Expect: &checks.Expect{Spec: &Expect{BodyContains: []string{"hello /one"}}}},
				{Name: "two", URL: base + "/two", Expect: &checks.Expect{Spec: &Expect{BodyContains: []string{"hello /two"}}}},
			}}}
	wantResult(t, probeOnce(t, c, 5*time.Second), probe.Success, "")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestResponseHeadersBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 40 {
			w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("x", 8<<10))
		}
	}))
	defer srv.Close()
	wantResult(t, probeOnce(t, httpCheck(srv.URL), 5*time.Second), probe.Error, "server response headers exceeded 262144 bytes")
}

func TestRedirectToHTTPS(t *testing.T) {
	ca := testcert.NewCA(t)
	caFile := ca.WriteFile(t)
	var proto atomic.Int32
	secure := tlsServer(t, listen(t, "127.0.0.1:0"), ca.Leaf(t, time.Now().Add(90*24*time.Hour), "127.0.0.1"), true,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			proto.Store(int32(r.ProtoMajor))
			io.WriteString(w, "secure")
		}))
	plain := httptest.NewServer(http.RedirectHandler(secure.URL+"/", http.StatusMovedPermanently))
	defer plain.Close()

	c := httpCheck(plain.URL)
	c.TLS = &config.TLSConfig{CAFile: caFile}
	c.Expect = &checks.Expect{Spec: &Expect{BodyContains: []string{"secure"}}}
	o := probeOnce(t, c, 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if ph := o.Steps[0].Phases; !ph.HasTLS || ph.TLS <= 0 {
		t.Fatalf("phases %+v", ph)
	}
	if proto.Load() != 2 {
		t.Fatalf("HTTP/%d after the redirect, want HTTP/2", proto.Load())
	}
}

// A run cancelled without a deadline (the daemon shutting down) ends at
// once rather than at the check's timeout.
func TestCancelledRunEndsAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	tg := &probe.Target{Key: "t/direct/", Check: httpCheck(srv.URL), Path: newPath(t)}
	done := make(chan probe.Outcome, 1)
	go func() { done <- New(zerolog.Nop()).Probe(ctx, tg) }()
	select {
	case o := <-done:
		wantResult(t, o, probe.Error, "context canceled")
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled run did not end")
	}
}

// A server that does not offer HTTP/2 is spoken HTTP/1.1 over TLS, its
// certificate read and its connection reused within the run.
func TestTLSHTTP1(t *testing.T) {
	ca := testcert.NewCA(t)
	caFile := ca.WriteFile(t)
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	var proto atomic.Int32
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		io.WriteString(w, "secure "+r.URL.Path)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, notAfter, "127.0.0.1")}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()

	c := &checks.Check{Name: "j", Type: "http", TLS: &config.TLSConfig{CAFile: caFile},
		Spec: &Config{HTTP: &HTTPRequest{Method: "GET", FollowRedirects: ptr(true), MaxRedirects: 10, MaxBodyBytes: 10 << 20},
			Steps: []Step{
				{Name: "one", URL: srv.URL + "/one", Expect: &checks.Expect{Spec: &Expect{BodyContains: []string{"secure /one"}}}},
				{Name: "two", URL: srv.URL + "/two", Expect: &checks.Expect{Spec: &Expect{BodyContains: []string{"secure /two"}}}},
			}}}
	o := probeOnce(t, c, 5*time.Second)
	wantResult(t, o, probe.Success, "")
	if proto.Load() != 1 {
		t.Fatalf("HTTP/%d, want HTTP/1.1", proto.Load())
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for one run of two steps, want 1", n)
	}
	if ph := o.Steps[0].Phases; !ph.HasTLS || ph.TLS <= 0 {
		t.Fatalf("phases %+v", ph)
	}
	if !o.CertNotAfter.Equal(notAfter) {
		t.Fatalf("CertNotAfter %v, want %v", o.CertNotAfter, notAfter)
	}
}

// writeCounter counts the writes that reach the connection under it.
type writeCounter struct {
	net.Conn
	writes atomic.Int32
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A corked flightConn sends nothing until a read, a release or a close, and
// then sends what it holds in one write; released, it writes through.
func TestFlightConnHoldsWritesForOneSegment(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	pair := func() (*flightConn, *writeCounter, net.Conn) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close(); sc.Close() })
		wc := &writeCounter{Conn: nc}
		return &flightConn{Conn: wc, corked: true}, wc, sc
	}
	read := func(sc net.Conn, n int) string {
		t.Helper()
		_ = sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, n)
		if _, err := io.ReadFull(sc, b); err != nil {
			t.Fatalf("server read: %v", err)
		}
		return string(b)
	}

	fc, wc, sc := pair()
	for _, s := range []string{"fin", "ished", "GET"} {
		if n, err := fc.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("held write = %d, %v", n, err)
		}
	}
	_ = sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := sc.Read(make([]byte, 16)); n != 0 || err == nil {
		t.Fatalf("server read %d bytes (%v) of writes that should be held", n, err)
	}
	if err := fc.release(); err != nil {
		t.Fatal(err)
	}
	if got := read(sc, 11); got != "finishedGET" {
		t.Fatalf("server got %q", got)
	}
	if n := wc.writes.Load(); n != 1 {
		t.Fatalf("%d writes for the held flight, want 1", n)
	}
	_, _ = fc.Write([]byte("after"))
	if got := read(sc, 5); got != "after" || wc.writes.Load() != 2 {
		t.Fatalf("released write: server got %q after %d writes", got, wc.writes.Load())
	}

	// A read sends the held writes first (the ClientHello before the
	// ServerHello is read); the connection stays corked.
	fc, wc, sc = pair()
	_, _ = fc.Write([]byte("hello"))
	go func() {
		if read(sc, 5) == "hello" {
			_, _ = sc.Write([]byte("x"))
		}
	}()
	_ = fc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := fc.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after a held write = %d, %v", n, err)
	}
	if !fc.corked || wc.writes.Load() != 1 {
		t.Fatalf("after a read: corked %v, %d writes", fc.corked, wc.writes.Load())
	}

	// Close sends what is held (a TLS alert) before closing.
	fc, _, sc = pair()
	_, _ = fc.Write([]byte("alert"))
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	_ = sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(sc); string(b) != "alert" || err != nil {
		t.Fatalf("after close the server read %q, %v", b, err)
	}
}
