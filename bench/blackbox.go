package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/buildinfo"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The side-by-side comparison with blackbox_exporter: the same number of
// probes per second, against the same loopback target, at the same time,
// each exporter in its own process so its CPU is read from /proc/PID/stat
// (utime+stime, every thread) without the load generator's or the
// target's, which run in this harness process.

// comparison is one side-by-side run (plain HTTP or TLS).
type comparison struct {
	name     string // http, https or https-x25519
	tls      bool
	env      []string // extra environment of the vantage daemon
	maxRatio float64
}

// comparisons are the side-by-side runs. https-x25519 is the TLS run with
// vantage offering the key exchange this blackbox_exporter offers (X25519
// only, GODEBUG=tlsmlkem=0), so the two exporters do the same handshake;
// vantage's default stays the hybrid X25519MLKEM768 browsers offer, and
// the https row measures that.
func comparisons() []comparison {
	return []comparison{{name: "http", maxRatio: 1.0 / 3}, {name: "https", tls: true, maxRatio: 1.0 / 2},
		{name: "https-x25519", tls: true, env: []string{"GODEBUG=tlsmlkem=0"}, maxRatio: 1.0 / 2}}
}

// compareSettings are the flags of the comparison.
type compareSettings struct {
	blackbox  string  // blackbox_exporter binary
	rate      float64 // probes per second, each side
	interval  time.Duration
	scrapeInt time.Duration // how often each exporter's /metrics is scraped, as Prometheus would
}

// compareResult is what one comparison measured.
type compareResult struct {
	c                   comparison
	rate                float64
	checks              int
	window              time.Duration
	version             string
	vantageGo           string  // the Go the vantage binary was built with
	vRate, bRate        float64 // probes/s achieved
	vSuccess, bSuccess  float64 // successful share
	vCPU, bCPU          time.Duration
	vPer1000, bPer1000  time.Duration
	bSkipped            int64
	loadStart, loadEnd  string
	vScrapes, bScrapes  int
	firstBlackboxReason string
	// roundRatios are the ratios of every round of this comparison, in
	// the order run, when there was more than one.
	roundRatios []float64
}

// medianRound is the round with the median ratio (the lower middle one of
// an even count), carrying every round's ratio.
func medianRound(rs []compareResult) compareResult {
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b compareResult) int { return cmp.Compare(a.ratio(), b.ratio()) })
	m := sorted[(len(sorted)-1)/2]
	if len(rs) > 1 {
		for _, r := range rs {
			m.roundRatios = append(m.roundRatios, r.ratio())
		}
	}
	return m
}

func (r compareResult) ratio() float64 {
	if r.bPer1000 <= 0 {
		return 0
	}
	return r.vPer1000.Seconds() / r.bPer1000.Seconds()
}

// run runs one comparison for rs.duration (rs.warmup excluded).
func (c comparison) run(ctx context.Context, rs runSettings, cs compareSettings) (res compareResult, err error) {
	res.c, res.rate = c, cs.rate
	res.vantageGo = "an unknown Go"
	if bi, err := buildinfo.ReadFile(rs.binary); err == nil {
		res.vantageGo = bi.GoVersion
	}
	res.checks = max(int(cs.rate*cs.interval.Seconds()+0.5), 1)
	dir, err := os.MkdirTemp(rs.tmp, "bench-vs-blackbox-"+c.name+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	// The target: a tiny handler on loopback, the same for both.
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
	target.Config.ErrorLog = log.New(io.Discard, "", 0) // closed probe connections are normal
	caFile := filepath.Join(dir, "ca.pem")
	if c.tls {
		// An ECDSA P-256 certificate: httptest's default RSA key would make
		// the target's handshakes (800/s here) cost more CPU than both
		// exporters and starve them on a small machine.
		cert, err := ecdsaCert()
		if err != nil {
			return res, err
		}
		target.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		target.StartTLS()
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: target.Certificate().Raw})
		if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
			target.Close()
			return res, err
		}
	} else {
		target.Start()
	}
	defer target.Close()
	timeout := cs.interval * 9 / 10

	// blackbox_exporter with the two modules a user would write.
	bbCfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(bbCfg, []byte(fmt.Sprintf(`modules:
  http_2xx:
    prober: http
    timeout: %[1]s
    http:
      preferred_ip_protocol: ip4
  tls:
    prober: http
    timeout: %[1]s
    http:
      preferred_ip_protocol: ip4
      fail_if_not_ssl: true
      tls_config:
        ca_file: %[2]s
`, dur(timeout), caFile)), 0o644); err != nil {
		return res, err
	}
	bbPath, err := exec.LookPath(cs.blackbox)
	if err != nil {
		return res, fmt.Errorf("blackbox_exporter not found (%w); `make deps` installs Debian's prometheus-blackbox-exporter", err)
	}
	if out, err := exec.CommandContext(ctx, bbPath, "--version").CombinedOutput(); err == nil {
		res.version = blackboxVersion(string(out))
	}
	bbAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	bb, err := startProcess(ctx, exec.Command(bbPath, "--config.file="+bbCfg, "--web.listen-address="+bbAddr, "--log.level=warn"),
		bbAddr, filepath.Join(dir, "blackbox.log"), "/metrics")
	if err != nil {
		return res, fmt.Errorf("blackbox_exporter: %w", err)
	}
	defer func() {
		if serr := bb.stop(); serr != nil && err == nil {
			err = serr
		}
	}()

	// vantage with the same probes per second against the same target.
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "# side-by-side with blackbox_exporter (generated)\nglobal:\n  interval: %s\n  timeout: %s\n  location: bench\n\nchecks:\n",
		dur(cs.interval), dur(timeout))
	for i := range res.checks {
		fmt.Fprintf(&cfg, "  - name: vs-%05d\n    type: http\n    url: %q\n    expect: {status: [200]}\n", i, fmt.Sprintf("%s/?c=%d", target.URL, i))
		if c.tls {
			fmt.Fprintf(&cfg, "    tls: {ca_file: %q}\n", caFile)
		}
	}
	cfgFile := filepath.Join(dir, "vantage.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		return res, err
	}
	d, err := startDaemonEnv(ctx, rs.binary, rs.memLimit, c.env, cfgFile, dir)
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := d.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	rs.log.Info().Str("comparison", c.name).Int("checks", res.checks).Str("vantage", d.addr).Str("blackbox", bbAddr).
		Msg("vantage and blackbox_exporter ready; driving both")

	module := "http_2xx"
	if c.tls {
		module = "tls"
	}
	gen := &probeLoad{client: &http.Client{Timeout: cs.interval + 5*time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}}
	genCtx, stopGen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		gen.drive(genCtx, "http://"+bbAddr, module, target.URL, res.checks, cs.rate)
	}()
	// Each exporter is scraped as a Prometheus server would: blackbox's
	// /probe answers are its scrapes, plus its own /metrics; vantage's
	// /metrics every scrape interval.
	var vScrapes, bScrapes atomic.Int64
	go func() {
		defer wg.Done()
		t := time.NewTicker(cs.scrapeInt)
		defer t.Stop()
		client := &http.Client{Timeout: time.Minute}
		for {
			select {
			case <-genCtx.Done():
				return
			case <-t.C:
			}
			if _, _, err := fetch(genCtx, client, "http://"+d.addr+"/metrics", "text/plain;version=0.0.4"); err == nil {
				vScrapes.Add(1)
			}
			if _, _, err := fetch(genCtx, client, "http://"+bbAddr+"/metrics", "text/plain;version=0.0.4"); err == nil {
				bScrapes.Add(1)
			}
		}
	}()
	defer func() {
		stopGen()
		wg.Wait()
	}()

	client := &http.Client{Timeout: time.Minute}
	snapURL := "http://" + d.addr + "/metrics?name[]=vantage_check_runs_total"
	type edge struct {
		at                 time.Time
		vRuns, vOK         float64
		bDone, bOK, bSkips int64
		vCPU, bCPU         time.Duration
	}
	take := func(at time.Time) (e edge, err error) {
		if err := d.sleepUntil(ctx, at); err != nil {
			return e, err
		}
		select {
		case <-bb.exited:
			return e, fmt.Errorf("blackbox_exporter exited early: %v%s", bb.waitErr, bb.logTail())
		default:
		}
		e.at = time.Now()
		fams, _, _, err := scrape(ctx, client, snapURL)
		if err != nil {
			return e, err
		}
		s := readSnapshot(fams)
		e.vRuns, e.vOK = s.totalRuns(), s.runs["success"]
		e.bDone, e.bOK, e.bSkips = gen.ok.Load()+gen.failed.Load(), gen.ok.Load(), gen.skipped.Load()
		if e.vCPU, err = cpuTime(d.cmd.Process.Pid); err != nil {
			return e, err
		}
		if e.bCPU, err = cpuTime(bb.cmd.Process.Pid); err != nil {
			return e, err
		}
		return e, nil
	}
	began := time.Now()
	res.loadStart = loadAvg()
	e0, err := take(began.Add(rs.warmup))
	if err != nil {
		return res, err
	}
	e1, err := take(e0.at.Add(rs.duration - rs.warmup))
	if err != nil {
		return res, err
	}
	res.loadEnd = loadAvg()
	res.window = e1.at.Sub(e0.at)
	w := res.window.Seconds()
	vRuns, bDone := e1.vRuns-e0.vRuns, float64(e1.bDone-e0.bDone)
	res.vRate, res.bRate = vRuns/w, bDone/w
	res.vCPU, res.bCPU = e1.vCPU-e0.vCPU, e1.bCPU-e0.bCPU
	if vRuns > 0 {
		res.vSuccess = (e1.vOK - e0.vOK) / vRuns
		res.vPer1000 = time.Duration(float64(res.vCPU) / (vRuns / 1000))
	}
	if bDone > 0 {
		res.bSuccess = float64(e1.bOK-e0.bOK) / bDone
		res.bPer1000 = time.Duration(float64(res.bCPU) / (bDone / 1000))
	}
	res.bSkipped = e1.bSkips - e0.bSkips
	res.vScrapes, res.bScrapes = int(vScrapes.Load()), int(bScrapes.Load())
	res.firstBlackboxReason = gen.firstFailure()
	return res, nil
}

// probeLoad drives blackbox_exporter's /probe at a fixed rate.
type probeLoad struct {
	client              *http.Client
	ok, failed, skipped atomic.Int64
	mu                  sync.Mutex
	firstFail           string
}

// maxInFlight bounds the load generator: a stalled exporter is counted as
// skipped probes rather than piling up goroutines.
const maxInFlight = 1024

// drive asks base's /probe for module against targetURL?c=0…n-1 in turn at
// rate per second until ctx ends. A probe counts as done when the answer
// came back; as successful when it says probe_success 1.
func (g *probeLoad) drive(ctx context.Context, base, module, targetURL string, n int, rate float64) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	period := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for i := 0; ; i++ {
		next = next.Add(period)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			g.skipped.Add(1)
			continue
		}
		u := fmt.Sprintf("%s/probe?module=%s&target=%s", base, module, url.QueryEscape(fmt.Sprintf("%s/?c=%d", targetURL, i%n)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.probe(ctx, u)
		}()
	}
}

func (g *probeLoad) probe(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		g.fail(err.Error())
		return
	}
	resp, err := g.client.Do(req)
	if err != nil {
		if !errors.Is(ctx.Err(), context.Canceled) {
			g.fail(err.Error())
		}
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		g.fail(err.Error())
	case resp.StatusCode != http.StatusOK:
		g.fail(resp.Status + ": " + truncate(string(body), 200))
	case bytes.Contains(body, []byte("\nprobe_success 1\n")):
		g.ok.Add(1)
	default:
		g.fail("probe_success 0")
	}
}

func (g *probeLoad) fail(reason string) {
	g.failed.Add(1)
	g.mu.Lock()
	if g.firstFail == "" {
		g.firstFail = reason
	}
	g.mu.Unlock()
}

func (g *probeLoad) firstFailure() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.firstFail
}

// blackboxVersion condenses `blackbox_exporter --version`: the first line
// and the Go it was built with, which decides its TLS key exchange.
func blackboxVersion(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	v := strings.TrimSpace(lines[0])
	for _, l := range lines[1:] {
		if k, val, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "go version" {
			v += ", built with " + strings.TrimSpace(val)
		}
	}
	return v
}

// ecdsaCert is a self-signed certificate for 127.0.0.1, its own CA.
func ecdsaCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vantage bench target"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// dur renders d for a config file (Prometheus duration syntax).
func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// compareMarkdown writes the side-by-side table.
func compareMarkdown(b *strings.Builder, rs []compareResult, cs compareSettings) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(b, "## vantage vs blackbox_exporter: CPU per probe, side by side\n\n")
	version := rs[0].version
	if version == "" {
		version = "blackbox_exporter (version unknown)"
	}
	fmt.Fprintf(b, "Both exporters run at the same time as separate processes, each at %.0f probes/s against the same loopback "+
		"target (a handler answering `ok` in the harness process): vantage with %d checks every %s (URLs differing by a query), "+
		"%s, through `/probe?module=…&target=…` at a fixed rate from the harness. "+
		"CPU is utime+stime of each process from /proc/PID/stat over the same steady window after a warm-up, so neither "+
		"includes the load generator or the target; probes are the delta of `vantage_check_runs_total` and the /probe answers "+
		"received. Each /metrics is scraped every %s as Prometheus would (for blackbox_exporter the /probe answers are the scrapes). "+
		"Both use a new connection per probe, as both exporters do; the TLS module verifies the target's certificate "+
		"(ECDSA P-256) against the same CA file as vantage's `tls: {ca_file}`. The TLS handshakes differ in one way the "+
		"exporters do not choose: vantage is built with %s, whose TLS offers the hybrid post-quantum key exchange "+
		"X25519MLKEM768 as browsers do (the target, built with the same Go, accepts it), while a blackbox_exporter built "+
		"with Go before 1.24 offers X25519 only; in a CPU profile taken when this comparison was written, the ML-KEM key "+
		"generation and decapsulation were 18 %% of vantage's CPU per TLS probe. The third row therefore runs vantage with "+
		"GODEBUG=tlsmlkem=0, offering X25519 only, so both do the same handshake; it measures the exporters, not the key "+
		"exchange. vantage's default stays the hybrid one (docs/deployment.md says how to turn it off).\n\n",
		rs[0].rate, rs[0].checks, cs.interval, version, cs.scrapeInt, rs[0].vantageGo)
	if n := len(rs[0].roundRatios); n > 1 {
		fmt.Fprintf(b, "Each comparison ran %d times, the comparisons interleaved; a row is the round with the median ratio, "+
			"and the last column lists every round's ratio in the order run.\n\n", n)
	}
	b.WriteString("| probes | window | vantage probes/s | blackbox probes/s | vantage success | blackbox success | vantage CPU s / 1,000 probes | blackbox CPU s / 1,000 probes | ratio | target | verdict | load average start → end | ratio of each round |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|\n")
	for _, r := range rs {
		name := "plain HTTP"
		switch r.c.name {
		case "https":
			name = "HTTPS (TLS), vantage's default key exchange"
		case "https-x25519":
			name = "HTTPS (TLS), both X25519 (vantage with GODEBUG=tlsmlkem=0)"
		}
		verdict := "MISS"
		switch {
		case r.vSuccess < 0.99 || r.bSuccess < 0.99:
			verdict = "INVALID (probes failed)"
		case r.ratio() > 0 && r.ratio() <= r.c.maxRatio:
			verdict = "PASS"
		}
		each := make([]string, len(r.roundRatios))
		for i, x := range r.roundRatios {
			each[i] = fmt.Sprintf("%.2f", x)
		}
		fmt.Fprintf(b, "| %s | %.0f s | %.1f | %.1f | %.2f%% | %.2f%% | %.3f | %.3f | %.2f | ≤ %.2f | %s | %s → %s | %s |\n",
			name, r.window.Seconds(), r.vRate, r.bRate, r.vSuccess*100, r.bSuccess*100,
			r.vPer1000.Seconds(), r.bPer1000.Seconds(), r.ratio(), r.c.maxRatio, verdict, r.loadStart, r.loadEnd, strings.Join(each, ", "))
	}
	b.WriteString("\n")
	for _, r := range rs {
		if r.bSkipped > 0 {
			fmt.Fprintf(b, "- %s: the load generator skipped %d probes (more than %d in flight).\n", r.c.name, r.bSkipped, maxInFlight)
		}
		if r.firstBlackboxReason != "" && r.bSuccess < 0.99 {
			fmt.Fprintf(b, "- %s: first failed blackbox probe: %s\n", r.c.name, strings.ReplaceAll(r.firstBlackboxReason, "\n", " "))
		}
	}
	b.WriteString("\n")
}
