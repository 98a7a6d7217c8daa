package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
)

// BenchmarkStatusSource1000Targets is the daemon's side of a status page
// render at 1,000 targets (334 checks × 3 nodes, a tenth of them down with
// stored failed runs): statistics snapshot, node slowdown, hysteresis state
// and failed-run lookups. ms/checks is one Checks call.
func BenchmarkStatusSource1000Targets(b *testing.B) {
	dir := b.TempDir()
	file := benchConfig(b, dir, "{interval: 30s, timeout: 5s, quantile_windows: [1m, 5m]}", 334)
	d, err := New(Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data"), Logger: zerolog.Nop(), Kinds: kinds.Registry()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.store.Close()
	d.apply(d.cfg, d.paths)
	targets := d.sched.Targets()
	if len(targets) < 1000 {
		b.Fatalf("%d targets", len(targets))
	}
	sink := d.store.Sink()
	rng := rand.New(rand.NewPCG(1, 1))
	now := time.Now()
	for run := range 10 {
		for i, t := range targets {
			down := i%10 == 7
			res := probe.Success
			if down {
				res = probe.Error
			}
			out := &probe.Outcome{Result: res, Start: now.Add(time.Duration(run-10) * time.Second),
				Duration: time.Duration(5+rng.IntN(50)) * time.Millisecond, Reason: "connection refused"}
			o := &probe.Observation{Target: t, Outcome: out, Up: !down, Transition: down && run == 1, Interval: 30 * time.Second}
			d.stats.Observe(o)
			d.status.Observe(o)
			if down {
				sink.Observe(o)
			}
		}
	}
	if err := d.store.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	src := newStatusSource(d, d.status)
	ctx := context.Background()
	linked := 0
	for _, c := range src.Checks(ctx) {
		if c.LastFailedRunID > 0 {
			linked++
		}
	}
	if linked != 100 {
		b.Fatalf("%d targets link a failed run, want 100", linked)
	}
	b.ResetTimer()
	for b.Loop() {
		src.mu.Lock()
		src.snap = nil // measure the snapshot too, not the memo
		src.mu.Unlock()
		src.Checks(ctx)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/checks")
}

// benchConfig writes a config of n http checks, each on the three demo
// load-balancer nodes, with the given global block, and returns its path.
func benchConfig(b *testing.B, dir, global string, n int) string {
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global: %s\npaths: [{name: direct}]\nchecks:\n", global)
	for i := range n {
		fmt.Fprintf(&cfg, "  - name: c%04d\n    type: http\n    url: http://shop.invalid/p/%d\n    nodes: {addresses: [{name: lb1, address: 127.0.0.11}, {name: lb2, address: 127.0.0.12}, {name: lb3, address: 127.0.0.13}]}\n", i, i)
	}
	file := filepath.Join(dir, "vantage.yaml")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return file
}
