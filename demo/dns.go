package demo

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const dnsTTL = 5 // seconds: short, so resolve: all notices a removed node quickly

func (s *Shop) startDNS(udp net.PacketConn, tcp net.Listener) error {
	h := dns.HandlerFunc(s.serveDNS)
	for _, srv := range []*dns.Server{
		{PacketConn: udp, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
		{Listener: tcp, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
			IdleTimeout: func() time.Duration { return 10 * time.Second }},
	} {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		s.wg.Go(func() {
			if err := srv.ActivateAndServe(); err != nil {
				select {
				case <-started:
					s.log.Error().Err(err).Msg("demo DNS server stopped")
				default:
					failed <- err
				}
			}
		})
		select {
		case <-started:
			s.dnsSrv = append(s.dnsSrv, srv)
		case err := <-failed:
			return fmt.Errorf("demo: DNS server: %w", err)
		}
	}
	return nil
}

// serveDNS answers for the shop's names: A records from the endpoints,
// NXDOMAIN for other names in the shop's zones, REFUSED for the rest of
// the world (it is not a recursive resolver).
func (s *Shop) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		if len(req.Question) != 1 {
			m.SetRcode(req, dns.RcodeFormatError)
		}
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	zone := ""
	switch {
	case name == "shop.test." || strings.HasSuffix(name, ".shop.test."):
		zone = "shop.test."
	case name == "shop-cdn.test." || strings.HasSuffix(name, ".shop-cdn.test."):
		zone = "shop-cdn.test."
	default:
		m.SetRcode(req, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	st := s.faults.Load()
	found := name == zone // the apex exists (with no A records)
	for i, ep := range s.endpoints {
		if dns.Fqdn(ep.domain) != name {
			continue
		}
		found = true
		if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
			continue
		}
		if st.dnsRemoved[i] {
			continue
		}
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL},
			A:   net.IP(ep.ip.AsSlice()),
		})
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		// Negative answers carry the SOA so resolvers cache them briefly.
		m.Ns = []dns.RR{&dns.SOA{
			Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: dnsTTL},
			Ns:      "ns." + zone,
			Mbox:    "hostmaster." + zone,
			Serial:  1,
			Refresh: 3600, Retry: 600, Expire: 86400, Minttl: dnsTTL,
		}}
	}
	_ = w.WriteMsg(m)
}
