package main

import (
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
)

// TestDocsQuoteDemoEvalInterval: docs/alerting.md states the demo's rule
// evaluation interval in two places; both must be the one the demo uses.
func TestDocsQuoteDemoEvalInterval(t *testing.T) {
	b, err := os.ReadFile("../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	iv := model.Duration(demoEvalInterval).String()
	for _, want := range []string{
		"`vantage demo` uses " + iv + ")",
		strings.TrimSuffix(iv, "s") + " s evaluation",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/alerting.md does not say %q (the demo evaluates rules every %s)", want, iv)
		}
	}
}

// TestDemoDefaultsUnprivilegedAndDocumented: the demo's preferred ports can
// be bound by any user, and the README's and deployment guide's curl lines
// use the control address the demo prefers.
func TestDemoDefaultsUnprivilegedAndDocumented(t *testing.T) {
	for _, a := range []string{defaultDemoDNSAddr, defaultDemoControlAddr} {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := strconv.Atoi(port); p < 1024 {
			t.Errorf("default %s: port %d needs root", a, p)
		}
	}
	app := kingpin.New("x", "")
	f := addDemoFlags(app.Command("demo", ""))
	if _, err := app.Parse([]string{"demo"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{*f.httpsPort, *f.httpPort} {
		if p < 1024 {
			t.Errorf("default shop port %d needs root", p)
		}
	}
	if *f.dnsAddr != defaultDemoDNSAddr || *f.controlAddr != defaultDemoControlAddr {
		t.Fatalf("flag defaults %s %s", *f.dnsAddr, *f.controlAddr)
	}
	ctl := regexp.MustCompile(`http://(127\.0\.0\.10:\d+)/faults`)
	dnsRE := regexp.MustCompile(`127\.0\.0\.10:\d+`)
	for _, doc := range []string{"../../README.md", "../../docs/deployment.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, m := range ctl.FindAllStringSubmatch(string(b), -1) {
			found++
			if m[1] != defaultDemoControlAddr {
				t.Errorf("%s: curl line uses %s, the demo's control address is %s", doc, m[1], defaultDemoControlAddr)
			}
		}
		if found == 0 {
			t.Errorf("%s: no curl line for the control endpoint", doc)
		}
		for _, a := range dnsRE.FindAllString(string(b), -1) {
			if a != defaultDemoControlAddr && a != defaultDemoDNSAddr {
				t.Errorf("%s: mentions %s, neither the demo's DNS (%s) nor its control address", doc, a, defaultDemoDNSAddr)
			}
		}
	}
}
