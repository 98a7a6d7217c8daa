package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBlackboxVersion(t *testing.T) {
	out := `blackbox_exporter, version 0.23.0 (branch: debian/sid, revision: 0.23.0-4+b4)
  build user:       team+pkg-go@tracker.debian.org
  build date:       20230409-09:57:40
  go version:       go1.19.8
  platform:         linux/amd64
`
	want := "blackbox_exporter, version 0.23.0 (branch: debian/sid, revision: 0.23.0-4+b4), built with go1.19.8"
	if got := blackboxVersion(out); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCompareMarkdownVerdicts(t *testing.T) {
	http, https, same := comparisons()[0], comparisons()[1], comparisons()[2]
	rs := []compareResult{
		// 0.25 / 0.80: a third would pass.
		{c: http, rate: 400, checks: 400, window: 50 * time.Second, vRate: 400, bRate: 400, vSuccess: 1, bSuccess: 1,
			vPer1000: 250 * time.Millisecond, bPer1000: 800 * time.Millisecond},
		// 0.8 / 1.4 = 0.57 > 1/2.
		{c: https, rate: 400, checks: 400, window: 50 * time.Second, vRate: 400, bRate: 400, vSuccess: 1, bSuccess: 1,
			vPer1000: 800 * time.Millisecond, bPer1000: 1400 * time.Millisecond},
		// 0.65 / 1.4 = 0.46: the same handshake on both sides.
		{c: same, rate: 400, checks: 400, window: 50 * time.Second, vRate: 400, bRate: 400, vSuccess: 1, bSuccess: 1,
			vPer1000: 650 * time.Millisecond, bPer1000: 1400 * time.Millisecond},
	}
	var b strings.Builder
	compareMarkdown(&b, rs, compareSettings{rate: 400, interval: time.Second, scrapeInt: 15 * time.Second})
	md := b.String()
	for _, want := range []string{
		"| plain HTTP | 50 s | 400.0 | 400.0 | 100.00% | 100.00% | 0.250 | 0.800 | 0.31 | ≤ 0.33 | PASS |",
		"| HTTPS (TLS), vantage's default key exchange | 50 s | 400.0 | 400.0 | 100.00% | 100.00% | 0.800 | 1.400 | 0.57 | ≤ 0.50 | MISS |",
		"| HTTPS (TLS), both X25519 (vantage with GODEBUG=tlsmlkem=0) | 50 s | 400.0 | 400.0 | 100.00% | 100.00% | 0.650 | 1.400 | 0.46 | ≤ 0.50 | PASS |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Failed probes make the comparison invalid whatever the ratio.
	rs[0].bSuccess = 0.5
	b.Reset()
	compareMarkdown(&b, rs, compareSettings{rate: 400, interval: time.Second, scrapeInt: 15 * time.Second})
	if !strings.Contains(b.String(), "| 0.31 | ≤ 0.33 | INVALID (probes failed) |") {
		t.Errorf("failed probes not flagged:\n%s", b.String())
	}
}

func TestTrimPprofHeader(t *testing.T) {
	in := "File: vantage\nBuild ID: abc\nType: cpu\nTime: 2026-12-06 20:57:34 UTC\nDuration: 25s, Total samples = 2.39s ( 9.56%)\n      flat  flat%\n"
	if got := trimPprofHeader(in); got != "Duration: 25s, Total samples = 2.39s ( 9.56%)\n      flat  flat%" {
		t.Errorf("got %q", got)
	}
}

// TestMedianRound: the row is the round with the median ratio, and it
// lists every round's ratio in the order run.
func TestMedianRound(t *testing.T) {
	round := func(v, b time.Duration) compareResult {
		return compareResult{c: comparisons()[0], vPer1000: v, bPer1000: b}
	}
	rs := []compareResult{round(340, 1000), round(290, 1000), round(310, 1000)}
	m := medianRound(rs)
	if m.vPer1000 != 310 || !slices.Equal(m.roundRatios, []float64{rs[0].ratio(), rs[1].ratio(), rs[2].ratio()}) {
		t.Errorf("median round %v with ratios %v, want 310 and [0.34 0.29 0.31]", m.vPer1000, m.roundRatios)
	}
	if m := medianRound(rs[:2]); m.vPer1000 != 290 {
		t.Errorf("of two rounds: %v, want the lower (290)", m.vPer1000)
	}
	if m := medianRound(rs[:1]); m.roundRatios != nil {
		t.Errorf("one round lists %v", m.roundRatios)
	}
}
