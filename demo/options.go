package demo

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
)

// Host names the demo serves.
const (
	WWWHost    = "www.shop.test"
	APIHost    = "api.shop.test"
	StaticHost = "static.shop-cdn.test"
)

// DefaultPassword is the demo API password unless Options.Password is set.
const DefaultPassword = "demo-password"

// Node is one load-balancer node behind www.shop.test.
type Node struct {
	Name string     `json:"name"`
	IP   netip.Addr `json:"ip"`
}

// Options configure a demo shop. The zero value is usable: every field has a
// loopback default and ports are picked at random, so many shops can run
// side by side on one machine.
type Options struct {
	// Nodes are www.shop.test's load-balancer nodes. Default lb1..lb3 on
	// 127.0.0.11..13.
	Nodes []Node
	// APIIP is api.shop.test's address. Default 127.0.0.21.
	APIIP netip.Addr
	// StaticIP is static.shop-cdn.test's address. Default 127.0.0.31.
	StaticIP netip.Addr
	// DNSAddr is where the DNS server listens on UDP and TCP. Default
	// "127.0.0.10:0" (random port, the same for UDP and TCP).
	DNSAddr string
	// HTTPSPort and HTTPPort are shared by every shop address. 0 picks a
	// port that is free on all of them.
	HTTPSPort int
	HTTPPort  int
	// ControlAddr is the fault-injection HTTP endpoint. Default "127.0.0.10:0".
	ControlAddr string
	// MoveTakenPorts lets a listener whose preferred (non-zero) port cannot
	// be bound (taken, or privileged) take a random port instead, on its
	// own: the others keep theirs. Shop.Moved says which moved. Without
	// it, Start fails.
	MoveTakenPorts bool
	// Dir receives ca.pem. Empty: a temporary directory removed by Close.
	Dir string
	// Password is the API login password. Default DefaultPassword.
	Password string
	// Logger gets start/stop and fault changes; nothing per request.
	Logger zerolog.Logger
	// Now is the clock used for certificate validity. Default time.Now.
	Now func() time.Time
	// Seed makes fault randomness (ratios, jitter) reproducible. 0 seeds
	// from the system's random source.
	Seed uint64
}

// validNodeName mirrors the check-name alphabet so node names work as labels.
func validNodeName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// withDefaults fills unset fields and rejects settings that cannot work.
func (o Options) withDefaults() (Options, error) {
	if len(o.Nodes) == 0 {
		o.Nodes = []Node{
			{Name: "lb1", IP: netip.MustParseAddr("127.0.0.11")},
			{Name: "lb2", IP: netip.MustParseAddr("127.0.0.12")},
			{Name: "lb3", IP: netip.MustParseAddr("127.0.0.13")},
		}
	} else {
		o.Nodes = append([]Node(nil), o.Nodes...)
	}
	if !o.APIIP.IsValid() {
		o.APIIP = netip.MustParseAddr("127.0.0.21")
	}
	if !o.StaticIP.IsValid() {
		o.StaticIP = netip.MustParseAddr("127.0.0.31")
	}
	if o.DNSAddr == "" {
		o.DNSAddr = "127.0.0.10:0"
	}
	if o.ControlAddr == "" {
		o.ControlAddr = "127.0.0.10:0"
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.Now == nil {
		o.Now = time.Now
	}

	var errs []error
	seenName := map[string]bool{}
	seenIP := map[netip.Addr]string{}
	addIP := func(ip netip.Addr, who string) {
		if prev, dup := seenIP[ip]; dup {
			errs = append(errs, fmt.Errorf("demo: %s and %s share address %s; every shop address must be distinct", prev, who, ip))
		}
		seenIP[ip] = who
	}
	for i, n := range o.Nodes {
		if !validNodeName(n.Name) {
			errs = append(errs, fmt.Errorf("demo: node %d: invalid name %q (want [a-z0-9_-]+)", i, n.Name))
		}
		if n.Name == WWWHost || n.Name == APIHost || n.Name == StaticHost || seenName[n.Name] {
			errs = append(errs, fmt.Errorf("demo: node %d: duplicate or reserved name %q", i, n.Name))
		}
		seenName[n.Name] = true
		if !n.IP.IsValid() || !n.IP.Is4() {
			errs = append(errs, fmt.Errorf("demo: node %q: want an IPv4 address, got %q", n.Name, n.IP))
			continue
		}
		addIP(n.IP, "node "+n.Name)
	}
	for _, x := range []struct {
		ip  netip.Addr
		who string
	}{{o.APIIP, APIHost}, {o.StaticIP, StaticHost}} {
		if !x.ip.Is4() {
			errs = append(errs, fmt.Errorf("demo: %s: want an IPv4 address, got %q", x.who, x.ip))
			continue
		}
		addIP(x.ip, x.who)
	}
	for _, p := range []struct {
		port int
		name string
	}{{o.HTTPSPort, "HTTPSPort"}, {o.HTTPPort, "HTTPPort"}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("demo: %s %d out of range", p.name, p.port))
		}
	}
	if o.HTTPSPort != 0 && o.HTTPSPort == o.HTTPPort {
		errs = append(errs, errors.New("demo: HTTPSPort and HTTPPort must differ"))
	}
	return o, errors.Join(errs...)
}
