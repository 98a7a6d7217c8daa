package dnsprobe

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
)

// FuzzDNSReply feeds a DNS server's reply over TCP framing to
// exchangeTCP, then checks the answers as Probe does (docs/fuzzing.md).
// framed puts the reply in a frame of its own length with the query's id;
// otherwise the bytes go out as they are, length prefix included.
func FuzzDNSReply(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("www.shop.test.", dns.TypeA)
	good := new(dns.Msg)
	good.SetReply(q)
	good.Answer = append(good.Answer,
		&dns.CNAME{Hdr: dns.RR_Header{Name: "www.shop.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "shop.test."},
		&dns.A{Hdr: dns.RR_Header{Name: "shop.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)},
		&dns.TXT{Hdr: dns.RR_Header{Name: "shop.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"a\nb\"c\x00\xff"}})
	nx := new(dns.Msg)
	nx.SetRcode(q, dns.RcodeNameError)
	trunc := good.Copy()
	trunc.Truncated = true
	for _, m := range []*dns.Msg{good, nx, trunc} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b[:len(b)/2], true)
	}
	// A compression pointer loop, a frame longer than what follows, an
	// empty frame and garbage.
	f.Add([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}, true)
	f.Add([]byte{0xff, 0xff, 0, 0}, false)
	f.Add([]byte{0, 0}, false)
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), false)
	f.Add([]byte{}, true)

	p := New(zerolog.Nop())
	expects := []*checks.Expect{nil, {Spec: &Expect{AnswersMin: 1}}, {Spec: &Expect{AnswersContain: []string{"192.0.2.1"}, AnswersMin: 2}}, {Spec: &Expect{Rcode: "nxdomain"}}}
	f.Fuzz(func(t *testing.T, reply []byte, framed bool) {
		defer testenv.HangGuard()()
		m := new(dns.Msg)
		m.SetQuestion("www.shop.test.", dns.TypeA)
		packed, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			var l [2]byte
			if _, err := io.ReadFull(server, l[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, server, int64(binary.BigEndian.Uint16(l[:]))); err != nil {
				return
			}
			out := reply
			if framed {
				msg := append([]byte(nil), reply...)
				if len(msg) >= 2 {
					binary.BigEndian.PutUint16(msg, m.Id)
				}
				out = binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
				out = append(out, msg...)
			}
			_, _ = server.Write(out)
		}()
		// The pipe's far end closes after the reply, so exchangeTCP
		// reading past the frame would hang (and HangGuard report it).
		// No deadline: with a 30s one on each pipe the worker grew to
		// 550 MB in 45s of fuzzing; without, it stays near 125 MB.
		resp, err := exchangeTCP(client, packed, m.Id)
		if err != nil {
			return
		}
		if resp.Id != m.Id {
			t.Fatalf("reply id %d accepted for query %d", resp.Id, m.Id)
		}
		for _, rr := range resp.Answer {
			_ = rrValue(rr)
		}
		for _, e := range expects {
			target := &probe.Target{Check: &checks.Check{Name: "dns", Type: "dns", Expect: e}}
			res, reason := p.expect(target, dns.TypeA, resp, time.Millisecond)
			switch {
			case res == probe.Success && reason != "":
				t.Errorf("success with reason %q", reason)
			case res == probe.Failure && reason == "":
				t.Errorf("failure without a reason")
			case res != probe.Success && res != probe.Failure:
				t.Errorf("result %q for a well-formed reply: %s", res, reason)
			}
			if strings.ContainsAny(reason, "\r\n") {
				t.Errorf("reason is not one line: %q", reason)
			}
		}
	})
}
