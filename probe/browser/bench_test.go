package browser

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// BenchmarkJourney runs a 4-step journey on the demo shop with 2 runs at
// once and reports journeys/s, the p50 overhead of a vantage run over the
// same steps in a bare chromedp program (same browser, same context
// creation through a plain forwarding proxy), and the PSS of Chromium plus
// this process.
func BenchmarkJourney(b *testing.B) {
	f := getFixture(b)
	cfg := f.shop.ConfigWithOptions(demo.ConfigOptions{NoAlerts: true, NoAltPath: true}) + `
  - name: bench-journey
    type: browser
    interval: 1m
    timeout: 20s
    screenshot: never
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}]}
    steps:
      - navigate: ` + f.shop.URL(demo.WWWHost, "/product/123") + `
      - click: "#add-to-cart"
      - wait_visible: "#cart-count"
      - assert_text: {selector: "#cart-count", contains: "1"}
`
	tt := &testing.T{}
	tg := f.targetsWithPaths(tt, cfg, "bench-journey")[0]
	p := f.prober
	if out := probe.RunOnce(context.Background(), p, tg); out.Result != probe.Success {
		b.Fatalf("warm-up: %s", describe(out))
	}

	// Throughput: 2 concurrent runs.
	var mu sync.Mutex
	var ours []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan struct{})
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	for range 2 {
		wg.Go(func() {
			for range next {
				out := probe.RunOnce(context.Background(), p, tg)
				if out.Result != probe.Success {
					b.Errorf("run: %s", describe(out))
				}
				mu.Lock()
				ours = append(ours, out.Duration)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	pss := float64(p.BrowserPSS()+processPSS(os.Getpid())) / (1 << 20)

	// Baseline: the same steps, one at a time like ours (sequential p50).
	var bare []time.Duration
	var ourSeq []time.Duration
	n := max(5, min(b.N, 20))
	for range n {
		d, err := bareJourney(p, f, tg)
		if err != nil {
			b.Fatalf("bare journey: %v", err)
		}
		bare = append(bare, d)
		out := probe.RunOnce(context.Background(), p, tg)
		ourSeq = append(ourSeq, out.Duration)
	}
	overhead := (float64(median(ourSeq)) - float64(median(bare))) / float64(median(bare)) * 100
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "journeys/s")
	b.ReportMetric(overhead, "overhead_%")
	b.ReportMetric(pss, "pss_MiB")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// bareJourney is the journey written directly against chromedp: a new
// incognito context through a forwarding proxy (Chromium cannot reach the
// shop's names otherwise), navigate, click, wait, read the text.
func bareJourney(p *Prober, f *fixture, tg *probe.Target) (time.Duration, error) {
	inst, err := p.browser()
	if err != nil {
		return 0, err
	}
	pl := &runPlan{}
	node := &probe.Node{Addr: f.shop.Nodes()[0].IP}
	px, err := newForwardProxy(probeutil.Dialer{Path: tg.Path, Node: node, PinHost: demo.WWWHost}, nil, pl.blocked)
	if err != nil {
		return 0, err
	}
	defer px.Close()
	// The bare program does no certificate work of its own.
	for _, h := range []string{demo.WWWHost, demo.StaticHost} {
		px.verified[f.shop.Addr(h)] = true
	}
	start := time.Now()
	ctx, cancel := chromedp.NewContext(inst.ctx, chromedp.WithNewBrowserContext(func(c *target.CreateBrowserContextParams) {
		c.ProxyServer = "http://" + px.Addr()
		c.ProxyBypassList = "<-loopback>"
	}))
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
	defer tcancel()
	err = chromedp.Do(ctx,
		chromedp.Navigate(f.shop.URL(demo.WWWHost, "/product/123")),
		chromedp.Click(chromedp.CSS("#add-to-cart"), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#cart-count")),
	)
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#cart-count")))
	}
	return time.Since(start), err
}
