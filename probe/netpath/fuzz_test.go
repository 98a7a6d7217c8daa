package netpath

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// FuzzProxyReply has a loopback proxy answer every connection with the
// fuzzed bytes and then end its side, and dials through it as an HTTP
// CONNECT or a SOCKS5 proxy (docs/fuzzing.md).
func FuzzProxyReply(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\nhello from the target\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde",
		"HTTP/1.0 200\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
		"HTTP/1.1 502 " + strings.Repeat("x", 200) + "\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 70<<10) + "\r\n\r\n",
		"HTTP/1.1 200 OK\n\nbare newlines",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"",
	} {
		f.Add([]byte(s), false)
	}
	for _, b := range [][]byte{
		{5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 'h', 'i'},       // no auth, connected (IPv4)
		{5, 2, 1, 0, 5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80},       // user/password, connected (name)
		{5, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, // IPv6 address cut short
		{5, 0xff},                            // no acceptable method
		{5, 2, 1, 1},                         // bad password
		{5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0}, // connection refused
		{5, 0, 5, 0, 0, 9, 1, 2, 3},          // unknown address type
		{4, 90, 0, 0, 0, 0, 0, 0},            // a SOCKS4 answer
		{5, 0, 5, 0, 0, 3, 255},              // name longer than what follows
	} {
		f.Add(b, true)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	replies := make(chan []byte, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reply := <-replies
			go func() {
				defer c.Close()
				_, _ = c.Write(reply)
				_ = c.(*net.TCPConn).CloseWrite()
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	const pass = "hunter2pw"
	paths := map[bool]*Path{}
	for socks, scheme := range map[bool]string{false: "http", true: "socks5"} {
		p, err := New(checks.Path{Name: "p", Proxy: scheme + "://alice:" + pass + "@" + ln.Addr().String()})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = p.Close() })
		paths[socks] = p
	}
	authz := base64.StdEncoding.EncodeToString([]byte("alice:" + pass))

	f.Fuzz(func(t *testing.T, reply []byte, socks bool) {
		defer testenv.HangGuard()()
		replies <- reply
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := paths[socks].DialContext(ctx, "tcp", "www.shop.test:443")
		if err != nil {
			msg := err.Error()
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("dial waited for more than the proxy sent: %v", err)
			}
			if strings.Contains(msg, pass) || strings.Contains(msg, authz) {
				t.Fatalf("error shows the proxy password: %s", msg)
			}
			if strings.ContainsAny(msg, "\r\n") || len(msg) > 1024 {
				t.Fatalf("error is not one short line (%d bytes): %q", len(msg), msg)
			}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		rest, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("reading the tunnel: %v", err)
		}
		// What the tunnel gives is what the proxy sent after its answer.
		if !bytes.HasSuffix(reply, rest) {
			t.Fatalf("tunnel gave %q, not the end of %q", rest, reply)
		}
		if !socks && len(rest) == len(reply) {
			t.Fatalf("CONNECT succeeded without consuming an answer from %q", reply)
		}
	})
}
