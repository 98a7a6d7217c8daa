package demo

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func benchShop(b *testing.B) *Shop {
	b.Helper()
	s, err := Start(b.Context(), Options{Dir: b.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkPlainHTTP is the cheap path the daemon benchmark drives: one
// request per fresh connection, as vantage probes.
func BenchmarkPlainHTTP(b *testing.B) {
	s := benchShop(b)
	addr := netip.AddrPortFrom(s.Nodes()[0].IP, uint16(s.HTTPPort())).String()
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	u := s.HTTPURL(WWWHost, "/")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(u)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkTLSHandshake measures full handshakes (no resumption).
func BenchmarkTLSHandshake(b *testing.B) {
	s := benchShop(b)
	addr := netip.AddrPortFrom(s.Nodes()[0].IP, uint16(s.HTTPSPort())).String()
	conf := &tls.Config{RootCAs: s.CAPool(), ServerName: WWWHost}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := tls.Dial("tcp", addr, conf)
			if err != nil {
				b.Error(err)
				return
			}
			c.Close()
		}
	})
}
