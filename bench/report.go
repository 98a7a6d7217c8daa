package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the figures were taken.
type machine struct {
	cores                 int
	cpu, mem, kernel, rev string
	goVersion             string
	load                  string // load average when the run began
}

func readMachine(ctx context.Context) machine {
	m := machine{cores: runtime.NumCPU(), cpu: "unknown", mem: "unknown", kernel: "unknown", rev: "unknown", goVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if n, err := procKB("/proc/meminfo", "MemTotal"); err == nil {
		m.mem = fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	m.load = loadAvg()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.rev = strings.TrimSpace(string(b))
		// The binary is built from the working tree, which may differ.
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.rev += " (with uncommitted changes)"
		}
	}
	return m
}

// report is the whole BENCHMARKS.md.
type report struct {
	command string
	started time.Time
	machine machine
	results []result
	compare []compareResult
	// compareSettings are the side-by-side comparison's flags.
	compareSettings compareSettings
	microCmd        string
	micro           []microResult
	errors          []string
}

func (r report) markdown() string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "# vantage benchmarks\n\n")
	fmt.Fprintf(&b, "How to reproduce: `make bench` (builds `./vantage`, then runs the command below from the repository root). "+
		"The detection benchmark is a separate target, `make bench-detection` (about 45 minutes); `make bench` keeps its section.\n\n")
	fmt.Fprintf(&b, "- Command: `%s`\n", r.command)
	fmt.Fprintf(&b, "- Date: %s\n", r.started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Machine: %d cores (runtime.NumCPU), %s, %s RAM, Linux %s\n", m.cores, m.cpu, m.mem, m.kernel)
	fmt.Fprintf(&b, "- Go: %s; vantage revision: %s\n", m.goVersion, m.rev)
	fmt.Fprintf(&b, "- Load average (1/5/15 min) when the run began: %s\n\n", m.load)

	for _, res := range r.results {
		res.markdown(&b)
	}
	compareMarkdown(&b, r.compare, r.compareSettings)
	if len(r.micro) > 0 {
		fmt.Fprintf(&b, "## Micro-benchmarks\n\n`%s` — medians of the runs.\n\n", r.microCmd)
		b.WriteString("| package | benchmark | runs | ns/op | B/op | allocs/op | other |\n|---|---|--:|--:|--:|--:|---|\n")
		for _, mr := range r.micro {
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n",
				strings.TrimPrefix(mr.pkg, "github.com/vantage-monitoring/vantage/"), mr.name, mr.runs,
				unitCell(mr, "ns/op"), unitCell(mr, "B/op"), unitCell(mr, "allocs/op"), mr.extra())
		}
		b.WriteString("\n")
	}
	if len(r.errors) > 0 {
		b.WriteString("## Errors\n\n")
		for _, e := range r.errors {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		b.WriteString("\n")
	}
	b.WriteString(`## Notes

This machine is shared and noisy: every figure is from one run (daemon
scenarios) or the median of several (micro-benchmarks), so compare ratios
and orders of magnitude, not the last digit. The daemon runs as its own
process and is measured from outside: probes/s and success share from the
delta of ` + "`vantage_check_runs_total`" + ` over the steady window (after the
warm-up every target has run at least once; it can read a percent or two
above the schedule because the daemon reads its counters part-way through
each gather), CPU from utime+stime in
/proc/PID/stat (10 ms ticks), peak RSS from VmHWM and PSS from smaps_rollup.
Start-delay quantiles come from the delta of the classic buckets of
` + "`vantage_scheduler_start_delay_seconds`" + `, interpolated linearly inside the
bucket holding the quantile (as PromQL's histogram_quantile does), so they
are only as precise as the bucket bounds (…, 5 ms, 10 ms, 25 ms, …). The
demo shop that answers the probes runs in the harness process on the same
cores, so the daemon competes with its own load; "shop CPU" shows how much.
The /metrics timings are full scrapes as a Prometheus server asks for
them (gzip; the text format, then protobuf as negotiated when native
histograms are enabled), from the request to the last compressed byte;
decompressing and parsing happen after the clock stops.
The daemon runs with GOMEMLIMIT (the -gomemlimit flag, default 210MiB).
Probing and scraping make short-lived garbage (a full text scrape at
10,000 targets allocates ~30 MB, down from ~100 MB before /metrics was
streamed), and without a soft limit the Go GC lets the heap grow to twice
the live set plus that garbage before collecting. The limit is a trade
between the two plain-http targets, measured on this machine with the load
average below 2 (before the streaming encoder):
no limit gave start delay p99 8.2 ms but peak RSS 352 MB; 200MiB gave RSS
227 MB but p99 17 ms (the GC then runs near the limit all the time and
allocating goroutines, the dispatcher among them, must assist it); 210MiB
met both, with p99 7–10 ms over several runs once each target's label set
was built once and shared by every per-target family. Deployments should set it from the container's
memory limit (deploy/kubernetes does).
Each window edge is one /metrics request filtered with ` + "`name[]`" + `, which
the daemon serves without gathering the per-target families; the timed
full scrapes come after the window. A Prometheus server scraping every
15 s adds a full scrape (about 0.3 CPU-seconds at 10,000 targets) three
to four times per window. The load
averages show how busy the shared machine was: above the core count, other
work competed with the daemon and the shop, which shows first in the
start-delay tail.
`)
	return b.String()
}

func unitCell(m microResult, unit string) string {
	v, ok := m.metrics[unit]
	if !ok {
		return "—"
	}
	return formatNum(v)
}

// markdown writes one scenario's table.
func (res result) markdown(b *strings.Builder) {
	sc := res.sc
	if sc.loopback {
		fmt.Fprintf(b, "## Scenario %s: %s targets (checks of one loopback %s target, URLs differing) every %s\n\n",
			sc.name, thousands(res.targets), sc.scheme, sc.interval)
	} else {
		fmt.Fprintf(b, "## Scenario %s: %s targets (%d checks × %d nodes, %s) every %s\n\n",
			sc.name, thousands(res.targets), sc.checks, res.targets/max(sc.checks, 1), sc.scheme, sc.interval)
	}
	fmt.Fprintf(b, "Scheduled %.1f probes/s; measured over a steady window of %.1f s after a warm-up.\n\n",
		res.scheduled, res.window.Seconds())
	b.WriteString("| measure | value | target | verdict |\n|---|--:|---|---|\n")
	row := func(name, value, target string, pass *bool) {
		verdict := ""
		if pass != nil {
			verdict = "MISS"
			if *pass {
				verdict = "PASS"
			}
		}
		if target == "" {
			target = "—"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, value, target, verdict)
	}
	minRate := sc.minRateShare * res.scheduled
	row("probes/s achieved", fmt.Sprintf("%.1f", res.rate),
		fmt.Sprintf("≥ %.1f (%.0f%% of scheduled)", minRate, sc.minRateShare*100), ptr(res.rate >= minRate))
	row("success share", fmt.Sprintf("%.2f%%", res.successShare*100), "≥ 99% (sanity: the shop is healthy)", ptr(res.successShare >= 0.99))
	row("CPU s per 1,000 probes", fmt.Sprintf("%.3f", res.cpuPer1000.Seconds()), "", nil)
	row("daemon CPU (cores busy)", fmt.Sprintf("%.2f of %d", res.cpuCores, runtime.NumCPU()), "", nil)
	row("shop + harness CPU (cores busy)", fmt.Sprintf("%.2f", res.shopCores), "", nil)
	row("start delay p50", delayCell(res.delayP50, res.p50Exact), "", nil)
	var p99Pass *bool
	p99Target := ""
	if sc.maxDelayP99 > 0 {
		p99Target = "< " + sc.maxDelayP99.String()
		p99Pass = ptr(res.p99Exact && res.delayP99 < sc.maxDelayP99.Seconds())
	}
	row("start delay p99", delayCell(res.delayP99, res.p99Exact), p99Target, p99Pass)
	row("runs started in window (delay histogram)", thousands(int(res.delayRuns)), "", nil)
	if sc.maxRSSEver > 0 {
		row("skipped runs in window", thousands(int(res.skipped)), "0", ptr(res.skipped == 0))
	} else {
		row("skipped runs in window", thousands(int(res.skipped)), "", nil)
	}
	if sc.maxRSSEver > 0 {
		var top uint64
		var list []string
		for _, r := range res.rss {
			top = max(top, r.bytes)
			list = append(list, fmt.Sprintf("%s %.0f", r.after, float64(r.bytes)/1e6))
		}
		row("RSS over time (VmRSS every 10 s from ready: time MB)", strings.Join(list, ", "),
			fmt.Sprintf("≤ %.0f MB at every sample", float64(sc.maxRSSEver)/1e6), ptr(len(res.rss) > 0 && top <= sc.maxRSSEver))
	}
	var rssPass *bool
	rssTarget := ""
	if sc.maxRSS > 0 {
		rssTarget = fmt.Sprintf("< %.0f MB", float64(sc.maxRSS)/1e6)
		rssPass = ptr(res.peakRSS < sc.maxRSS)
	}
	row("peak RSS (VmHWM)", fmt.Sprintf("%.1f MB", float64(res.peakRSS)/1e6), rssTarget, rssPass)
	row("PSS at end", fmt.Sprintf("%.1f MB", float64(res.pss)/1e6), "", nil)
	row("machine load average at end (1/5/15 min)", res.loadEnd, "", nil)
	var scrapePass *bool
	scrapeTarget := ""
	if sc.maxScrape > 0 {
		scrapeTarget = fmt.Sprintf("≤ %d ms", sc.maxScrape.Milliseconds())
		scrapePass = ptr(res.scrapeMedian <= sc.maxScrape && res.scrapeErr == "")
	}
	row("/metrics scrape, text + gzip, median", fmt.Sprintf("%.0f ms (%.1f MB uncompressed, %s samples)",
		float64(res.scrapeMedian)/float64(time.Millisecond), float64(res.scrapeBytes)/1e6, thousands(res.series)), scrapeTarget, scrapePass)
	var protoPass *bool
	if sc.maxScrape > 0 {
		protoPass = ptr(res.scrapeProtoMedian <= sc.maxScrape && res.scrapeErr == "")
	}
	row("/metrics scrape, protobuf + gzip, median", fmt.Sprintf("%.0f ms",
		float64(res.scrapeProtoMedian)/float64(time.Millisecond)), scrapeTarget, protoPass)
	if res.scrapeErr != "" {
		row("/metrics scrape failed", strings.ReplaceAll(res.scrapeErr, "|", "/"), scrapeTarget, ptr(false))
	}
	b.WriteString("\n")
	res.profile.markdown(b, sc.name)
}

// loadAvg is the 1, 5 and 15 minute load average: on a shared machine it
// says how much else competed for the cores.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " / ")
}

func ptr(b bool) *bool { return &b }

func delayCell(v float64, exact bool) string {
	switch {
	case math.IsNaN(v):
		return "no data"
	case !exact:
		return fmt.Sprintf("> %s", fmtSeconds(v))
	}
	return fmtSeconds(v)
}

func fmtSeconds(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.2f ms", v*1000)
	}
	return fmt.Sprintf("%.2f s", v)
}

// formatNum prints a benchmark figure with about three significant digits.
func formatNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100 || v == math.Trunc(v):
		return thousands(int(math.Round(v)))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// thousands groups digits with commas: 10002 → "10,002".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
