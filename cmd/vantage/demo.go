package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
)

type demoFlags struct {
	listen      *string
	dnsAddr     *string
	httpsPort   *int
	httpPort    *int
	controlAddr *string
	dir         *string
	interval    *time.Duration
	faults      *[]string
	browser     *bool
	browserSet  *bool
	browserOpts browserFlags
}

func addDemoFlags(c *kingpin.CmdClause) *demoFlags {
	set := new(bool)
	rules := rulesFor(c)
	f := &demoFlags{
		listen:      c.Flag("web.listen-address", "Address of the daemon's API, status page and metrics.").Default("127.0.0.1:9947").String(),
		dnsAddr:     c.Flag("demo.dns-address", "Address of the shop's DNS server (a random port is used if this one is taken).").Default("127.0.0.10:53").String(),
		httpsPort:   c.Flag("demo.https-port", "HTTPS port of every shop address (0: random).").Default("8443").Int(),
		httpPort:    c.Flag("demo.http-port", "Plain HTTP port of every shop address (0: random).").Default("8080").Int(),
		controlAddr: c.Flag("demo.control-address", "Address of the fault-injection endpoint.").Default("127.0.0.10:9948").String(),
		dir:         c.Flag("storage.path", "Directory for the demo's config, CA and data (default: a new temporary directory).").Default("").String(),
		interval:    c.Flag("demo.interval", "Check interval of the demo config.").Default("10s").Duration(),
		faults:      c.Flag("fault", "Inject a fault at start, e.g. lb2:latency=1.5s,latency_ratio=0.2 (repeatable).").Strings(),
		browser:     c.Flag("demo.browser", "Include the browser journey (default: when Chromium is installed).").IsSetByUser(set).Bool(),
		browserSet:  set,
		browserOpts: addBrowserFlags(c, rules),
	}
	rules.port("demo.https-port", f.httpsPort)
	rules.port("demo.http-port", f.httpPort)
	rules.positive("demo.interval", f.interval)
	return f
}

// startShop starts the demo shop, falling back to random ports when the
// preferred ones are taken (a second demo, or no root for port 53).
func startShop(ctx context.Context, f *demoFlags, dir string, log zerolog.Logger) (*demo.Shop, error) {
	opts := demo.Options{DNSAddr: *f.dnsAddr, HTTPSPort: *f.httpsPort, HTTPPort: *f.httpPort,
		ControlAddr: *f.controlAddr, Dir: dir, Logger: log}
	shop, err := demo.Start(ctx, opts)
	if err == nil {
		return shop, nil
	}
	log.Warn().Err(err).Msg("preferred demo ports unavailable; using random ports")
	host, _, _ := net.SplitHostPort(*f.dnsAddr)
	chost, _, _ := net.SplitHostPort(*f.controlAddr)
	opts.DNSAddr, opts.ControlAddr = net.JoinHostPort(host, "0"), net.JoinHostPort(chost, "0")
	opts.HTTPSPort, opts.HTTPPort = 0, 0
	return demo.Start(ctx, opts)
}

func runDemo(f *demoFlags, log zerolog.Logger, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := *f.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "vantage-demo-"); err != nil {
			fmt.Fprintln(stderr, "vantage demo:", err)
			return 1
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(stderr, "vantage demo:", err)
		return 1
	}
	shop, err := startShop(ctx, f, dir, log.With().Str("component", "demo-shop").Logger())
	if err != nil {
		fmt.Fprintln(stderr, "vantage demo: starting the shop:", err)
		return 1
	}
	defer shop.Close()
	for _, spec := range *f.faults {
		target, fault, err := demo.ParseFault(spec)
		if err == nil {
			err = shop.SetFault(target, fault)
		}
		if err != nil {
			fmt.Fprintf(stderr, "vantage demo: --fault=%s: %v\n", spec, err)
			return 2
		}
	}
	cfgFile := filepath.Join(dir, "vantage.yaml")
	timeout := 5 * time.Second
	if *f.interval <= timeout {
		timeout = *f.interval / 2
	}
	rcv, err := demo.StartReceiver(net.JoinHostPort(hostOf(*f.controlAddr), "0"), stdout)
	if err != nil {
		fmt.Fprintln(stderr, "vantage demo:", err)
		return 1
	}
	defer rcv.Close()
	withBrowser := *f.browser
	if !*f.browserSet {
		// Default: the browser journey when Chromium is installed.
		_, err := os.Stat(*f.browserOpts.path)
		withBrowser = err == nil
	}
	cfgText := shop.ConfigWithOptions(demo.ConfigOptions{Interval: *f.interval, Timeout: timeout,
		Browser: withBrowser, WebhookURL: rcv.URL()})
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		fmt.Fprintln(stderr, "vantage demo:", err)
		return 1
	}
	base := "http://" + *f.listen
	d, err := daemon.New(daemon.Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, demoDataDir),
		Notifiers: kinds.Notifiers(), EvalInterval: demoEvalInterval, ExternalURL: base,
		Logger: log, Probers: kinds.Probers(log, f.browserOpts.options(filepath.Join(dir, demoDataDir)))})
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", *f.listen)
	if err != nil {
		fmt.Fprintln(stderr, "vantage demo:", err)
		return 1
	}
	base = "http://" + l.Addr().String()
	var nodes []string
	for _, n := range shop.Nodes() {
		nodes = append(nodes, fmt.Sprintf("%s=%s", n.Name, n.IP))
	}
	fmt.Fprintf(stdout, `vantage demo is running (Ctrl-C stops it).

  status page    %[1]s/
  metrics        %[1]s/metrics
  timeline       %[1]s/api/v1/timeline?since=30m&format=markdown
  config         %[2]s
  shop           %[3]s  nodes %[4]s
  shop DNS       %[5]s   CA %[6]s

Try a check by hand:
  vantage once --config.file=%[2]s --check=shop-home

Inject a fault (only that node's series change):
  curl -X PUT -d '{"latency":"1.5s","latency_ratio":0.2}' %[7]s/faults/lb2
  curl -X PUT -d '{"refuse":true}' %[7]s/faults/static.shop-cdn.test
  curl -X DELETE %[7]s/faults          # clear all
  (or start with --fault=lb2:latency=1.5s,latency_ratio=0.2)

Watch it:
  curl -s %[1]s/metrics | grep 'vantage_check_duration_seconds_sum{check="shop-home"'
`, base, cfgFile, shop.URL(demo.WWWHost, "/"), strings.Join(nodes, " "), shop.DNSAddr(), shop.CAFile(), shop.ControlURL())
	reloadOnSIGHUP(d)
	if err := d.Run(ctx, l); err != nil {
		fmt.Fprintln(stderr, "vantage demo:", err)
		return 1
	}
	return 0
}

// demoEvalInterval is how often the demo evaluates its alert rules: faster
// than the daemon's default so a page follows a fault quickly
// (docs/alerting.md quotes it).
const demoEvalInterval = 2 * time.Second

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1"
	}
	return host
}
