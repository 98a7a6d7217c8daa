package demo

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// freeDNSAddr is an address on ip whose port is free for UDP and TCP at
// the time of the call.
func freeDNSAddr(t *testing.T, ip string) string {
	t.Helper()
	udp, tcp, err := listenDNS(t.Context(), ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tcp.Addr().String()
	_ = udp.Close()
	_ = tcp.Close()
	return addr
}

// TestMoveTakenPortsMovesOnlyTheTakenOne: with the control address and the
// HTTPS port taken, those two move to random ports (and Moved says so with
// the reason), while the DNS server and the HTTP port keep the ones asked
// for. Without MoveTakenPorts, Start fails on the taken address.
func TestMoveTakenPortsMovesOnlyTheTakenOne(t *testing.T) {
	// Other shops of this package run in parallel on the same addresses:
	// use addresses of their own.
	nodes := []Node{{Name: "lb1", IP: netip.MustParseAddr("127.0.5.11")}, {Name: "lb2", IP: netip.MustParseAddr("127.0.5.12")}}
	api, static := netip.MustParseAddr("127.0.5.21"), netip.MustParseAddr("127.0.5.31")
	ctlTaken, err := net.Listen("tcp", "127.0.5.10:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ctlTaken.Close()
	// The HTTPS port is taken on one shop address only.
	httpsTaken, err := net.Listen("tcp", "127.0.5.12:0")
	if err != nil {
		t.Fatal(err)
	}
	defer httpsTaken.Close()
	takenHTTPS := httpsTaken.Addr().(*net.TCPAddr).Port
	httpL, err := net.Listen("tcp", "127.0.5.11:0")
	if err != nil {
		t.Fatal(err)
	}
	freeHTTP := httpL.Addr().(*net.TCPAddr).Port
	_ = httpL.Close()
	dnsAddr := freeDNSAddr(t, "127.0.5.10")

	opts := Options{Nodes: nodes, APIIP: api, StaticIP: static, DNSAddr: dnsAddr, ControlAddr: ctlTaken.Addr().String(),
		HTTPSPort: takenHTTPS, HTTPPort: freeHTTP, Dir: t.TempDir(), Logger: zerolog.Nop()}
	if s, err := Start(t.Context(), opts); err == nil {
		_ = s.Close()
		t.Fatal("Start without MoveTakenPorts succeeded on taken addresses")
	}
	opts.MoveTakenPorts = true
	s := startShop(t, opts)
	if s.DNSAddr() != dnsAddr || s.HTTPPort() != freeHTTP {
		t.Errorf("free addresses moved: DNS %s (asked %s), HTTP port %d (asked %d)", s.DNSAddr(), dnsAddr, s.HTTPPort(), freeHTTP)
	}
	if s.HTTPSPort() == takenHTTPS || s.HTTPSPort() == 0 {
		t.Errorf("HTTPS port %d: want a new port instead of the taken %d", s.HTTPSPort(), takenHTTPS)
	}
	if s.ControlURL() == "http://"+ctlTaken.Addr().String() || !strings.HasPrefix(s.ControlURL(), "http://127.0.5.10:") {
		t.Errorf("control %s: want a new port on 127.0.5.10 instead of the taken %s", s.ControlURL(), ctlTaken.Addr())
	}
	moved := map[string]PortMove{}
	for _, m := range s.Moved() {
		moved[m.What] = m
	}
	if len(moved) != 2 {
		t.Fatalf("Moved() = %+v, want the HTTPS port and the control endpoint", s.Moved())
	}
	if m := moved[MovedControl]; m.Wanted != ctlTaken.Addr().String() || m.Got != strings.TrimPrefix(s.ControlURL(), "http://") ||
		m.Err == nil || !strings.Contains(m.Err.Error(), "address already in use") {
		t.Errorf("control move %+v", m)
	}
	if m := moved[MovedHTTPS]; !strings.Contains(m.Wanted, "port "+strconv.Itoa(takenHTTPS)) || !strings.Contains(m.Got, "port "+strconv.Itoa(s.HTTPSPort())) || m.Err == nil {
		t.Errorf("HTTPS move %+v", m)
	}
	// The shop works on its new ports.
	resp, err := pinnedClient(t, s, nodes[1].IP, 10*time.Second).Get(s.URL(WWWHost, "/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("www on the moved HTTPS port: %d", resp.StatusCode)
	}
}
