package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
)

// The demo's preferred addresses: unprivileged ports, so a non-root user
// gets them too (README.md and docs/deployment.md quote the control one).
const (
	defaultDemoDNSAddr     = "127.0.0.10:8053"
	defaultDemoControlAddr = "127.0.0.10:9948"
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
		dnsAddr:     c.Flag("demo.dns-address", "Address of the shop's DNS server, UDP and TCP (if taken, it alone moves to a random port and the demo says so).").Default(defaultDemoDNSAddr).String(),
		httpsPort:   c.Flag("demo.https-port", "HTTPS port of every shop address (0: random; if taken, it alone moves to a random port).").Default("8443").Int(),
		httpPort:    c.Flag("demo.http-port", "Plain HTTP port of every shop address (0: random; if taken, it alone moves to a random port).").Default("8080").Int(),
		controlAddr: c.Flag("demo.control-address", "Address of the fault-injection endpoint (if taken, it alone moves to a random port and the demo prints the new curl lines).").Default(defaultDemoControlAddr).String(),
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

// startShop starts the demo shop. A preferred address that is taken (a
// second demo, another service, or a privileged port without root) moves to
// a random port on its own; the others keep theirs, and every move is
// logged at WARN and returned for the banner.
func startShop(ctx context.Context, f *demoFlags, dir string, log zerolog.Logger) (*demo.Shop, []string, error) {
	opts := demo.Options{DNSAddr: *f.dnsAddr, HTTPSPort: *f.httpsPort, HTTPPort: *f.httpPort,
		ControlAddr: *f.controlAddr, Dir: dir, Logger: log, MoveTakenPorts: true}
	shop, err := demo.Start(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	for _, m := range shop.Moved() {
		log.Warn().Err(m.Err).Str("listener", m.What).Str("wanted", m.Wanted).Str("got", m.Got).
			Msg("preferred demo address unavailable; this listener moved to a random port (the others kept theirs)")
		note := fmt.Sprintf("The %s could not use %s (%v); it listens on %s instead.", m.What, m.Wanted, m.Err, m.Got)
		if m.What == demo.MovedControl {
			note += fmt.Sprintf(" The curl lines below use it; the README's (%s) do not reach this demo.", m.Wanted)
		}
		notes = append(notes, note)
	}
	return shop, notes, nil
}

// browserNotice explains a demo without its browser journey: why, what is
// missing (the checks and alert rules only the browser config has) and how
// to get it. Empty when the journey is in.
func browserNotice(f *demoFlags, withBrowser bool, shop *demo.Shop, cfg demo.ConfigOptions) (string, string) {
	if withBrowser {
		return "", ""
	}
	why := "--no-demo.browser was given"
	how := "run the demo without --no-demo.browser"
	if !*f.browserSet {
		why = "Chromium was not found at " + *f.browserOpts.path
		how = "install Chromium (Debian/Ubuntu: apt-get install chromium) or point --browser.path at it, then restart the demo"
	}
	with, without := cfg, cfg
	with.Browser, without.Browser = true, false
	var missing []string
	checksOf := func(text string) (map[string]bool, map[string]bool) {
		c, err := kinds.Registry().Parse([]byte(text), "demo.yaml", func(string) (string, bool) { return "", false })
		cs, as := map[string]bool{}, map[string]bool{}
		if err != nil {
			return cs, as
		}
		for _, x := range c.Checks {
			cs[x.Name] = true
		}
		for _, x := range c.Alerts {
			as[x.Name] = true
		}
		return cs, as
	}
	wc, wa := checksOf(shop.ConfigWithOptions(with))
	oc, oa := checksOf(shop.ConfigWithOptions(without))
	var cs, as []string
	for n := range wc {
		if !oc[n] {
			cs = append(cs, n)
		}
	}
	for n := range wa {
		if !oa[n] {
			as = append(as, n)
		}
	}
	slices.Sort(cs)
	slices.Sort(as)
	if len(cs) > 0 {
		missing = append(missing, "check "+strings.Join(cs, ", "))
	}
	if len(as) > 0 {
		missing = append(missing, "alert rules "+strings.Join(as, ", "))
	}
	what := "the browser journey"
	if len(missing) > 0 {
		what += " (" + strings.Join(missing, "; ") + ")"
	}
	return fmt.Sprintf("The demo runs WITHOUT %s: %s. No request of a real browser is measured and no browser alert can fire. To include it, %s.", what, why, how), why
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
	shop, notes, err := startShop(ctx, f, dir, log.With().Str("component", "demo-shop").Logger())
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
	cfgOpts := demo.ConfigOptions{Interval: *f.interval, Timeout: timeout, Browser: withBrowser, WebhookURL: rcv.URL()}
	if note, why := browserNotice(f, withBrowser, shop, cfgOpts); note != "" {
		log.Warn().Str("reason", why).Msg(note)
		notes = append([]string{note}, notes...)
	} else if *f.browserSet {
		if _, err := os.Stat(*f.browserOpts.path); err != nil {
			note := fmt.Sprintf("--demo.browser was given but Chromium was not found at %s: the browser journey will report errors. Install Chromium (Debian/Ubuntu: apt-get install chromium) or point --browser.path at it.", *f.browserOpts.path)
			log.Warn().Msg(note)
			notes = append([]string{note}, notes...)
		}
	}
	cfgText := shop.ConfigWithOptions(cfgOpts)
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		fmt.Fprintln(stderr, "vantage demo:", err)
		return 1
	}
	l, err := net.Listen("tcp", *f.listen)
	if err != nil {
		// Taken (a daemon already on :9947, a second demo): move it alone.
		host, port, serr := net.SplitHostPort(*f.listen)
		if serr != nil || port == "0" {
			fmt.Fprintln(stderr, "vantage demo:", err)
			return 1
		}
		l2, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err2 != nil {
			fmt.Fprintln(stderr, "vantage demo:", err)
			return 1
		}
		log.Warn().Err(err).Str("listener", "status page").Str("wanted", *f.listen).Str("got", l2.Addr().String()).
			Msg("preferred demo address unavailable; this listener moved to a random port (the others kept theirs)")
		notes = append(notes, fmt.Sprintf("The status page could not use %s (%v); it listens on %s instead (the URLs below use it).", *f.listen, err, l2.Addr()))
		l = l2
	}
	base := "http://" + l.Addr().String()
	d, err := daemon.New(daemon.Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, demoDataDir),
		Notifiers: kinds.Notifiers(), EvalInterval: demoEvalInterval, ExternalURL: base,
		Logger: log, Kinds: kinds.Registry(), Probers: kinds.Probers(log, f.browserOpts.options(filepath.Join(dir, demoDataDir)))})
	if err != nil {
		_ = l.Close()
		checks.WriteErrors(stderr, err)
		return 1
	}
	var nodes []string
	for _, n := range shop.Nodes() {
		nodes = append(nodes, fmt.Sprintf("%s=%s", n.Name, n.IP))
	}
	fmt.Fprint(stdout, "vantage demo is running (Ctrl-C stops it).\n")
	if len(notes) > 0 {
		fmt.Fprintln(stdout)
		for _, n := range notes {
			fmt.Fprintf(stdout, "!! %s\n", n)
		}
	}
	fmt.Fprintf(stdout, `
  status page    %[1]s/
  metrics        %[1]s/metrics
  timeline       %[1]s/api/v1/timeline?since=30m&format=markdown
                 vantage timeline --storage.path=%[8]s --since=30m
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
`, base, cfgFile, shop.URL(demo.WWWHost, "/"), strings.Join(nodes, " "), shop.DNSAddr(), shop.CAFile(), shop.ControlURL(), dir)
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
