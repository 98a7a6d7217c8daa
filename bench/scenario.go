package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/demo"
)

// scenario is one daemon load run against the demo shop.
type scenario struct {
	name     string
	checks   int    // http checks; each probes every shop node
	scheme   string // http or https
	interval time.Duration
	// Targets to meet.
	minRateShare float64 // achieved/scheduled probes per second
	maxDelayP99  time.Duration
	maxRSS       uint64        // bytes; 0: no target
	maxScrape    time.Duration // full /metrics scrape; 0: no target
	profile      bool          // take a CPU profile after the window (runSettings.profile)
	// loopback: instead of the demo shop, one loopback HTTP target in the
	// harness, with checks differing by URL and no nodes (targets = checks).
	loopback bool
	// warmup and duration override runSettings' when longer (a 60 s
	// interval needs a longer warm-up than the default).
	warmup, duration time.Duration
	maxRSSEver       uint64   // bytes: the RSS target at every sample; 0: none
	memLimit         string   // GOMEMLIMIT instead of runSettings'; "" keeps it
	args             []string // extra `vantage run` flags
}

// runSettings are the harness flags a scenario needs.
type runSettings struct {
	binary   string
	memLimit string // GOMEMLIMIT for the daemon
	duration time.Duration
	warmup   time.Duration
	scrapes  int
	tmp      string
	log      zerolog.Logger
	profile  time.Duration // CPU profile length for scenarios that take one; 0: none
}

// result is what one scenario measured.
type result struct {
	sc        scenario
	targets   int
	scheduled float64 // probes per second the config asks for
	window    time.Duration

	rate, successShare float64
	cpuPer1000         time.Duration
	cpuCores           float64 // daemon CPU seconds per wall second
	shopCores          float64 // the in-process shop (and harness)
	delayP50, delayP99 float64
	p50Exact, p99Exact bool
	delayRuns          float64
	skipped            float64
	peakRSS, pss       uint64
	scrapeMedian       time.Duration
	scrapeProtoMedian  time.Duration
	scrapeBytes        int64
	series             int
	loadEnd            string
	profile            cpuProfile
	rss                []rssSample // VmRSS over the run (from the daemon's start)
	scrapeErr          string      // a timed scrape that failed (e.g. past its timeout)
}

// rssSample is the daemon's resident memory at one moment.
type rssSample struct {
	after time.Duration // since the daemon was ready
	bytes uint64
}

// run starts a shop and a daemon process, lets the daemon warm up, measures
// over the steady window and stops both.
func (sc scenario) run(ctx context.Context, rs runSettings) (res result, err error) {
	dir, err := os.MkdirTemp(rs.tmp, "bench-"+sc.name+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	if sc.warmup > 0 {
		rs.warmup = max(rs.warmup, sc.warmup)
	}
	if sc.duration > 0 {
		rs.duration = sc.duration
	}
	if rs.duration <= rs.warmup {
		return res, fmt.Errorf("duration %s must be longer than the warm-up %s", rs.duration, rs.warmup)
	}
	var cfg string
	res.sc = sc
	if sc.loopback {
		target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		}))
		target.Config.ErrorLog = log.New(io.Discard, "", 0)
		target.Start()
		defer target.Close()
		cfg = loopbackConfig(target.URL, sc.checks, sc.interval)
		res.targets = sc.checks
	} else {
		shop, err := demo.Start(ctx, demo.Options{Dir: filepath.Join(dir, "shop"), Logger: zerolog.Nop()})
		if err != nil {
			return res, fmt.Errorf("starting demo shop: %w", err)
		}
		defer func() {
			if cerr := shop.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("stopping demo shop: %w", cerr)
			}
		}()
		// Timeout stays at the generated default (5s): shorter than any
		// interval the benchmark uses.
		if cfg, err = shop.BenchConfig(demo.BenchOptions{Checks: sc.checks, Scheme: sc.scheme, Interval: sc.interval}); err != nil {
			return res, err
		}
		res.targets = sc.checks * len(shop.Nodes())
	}
	cfgFile := filepath.Join(dir, "vantage.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return res, err
	}
	res.scheduled = float64(res.targets) / sc.interval.Seconds()

	if sc.memLimit != "" {
		rs.memLimit = sc.memLimit
	}
	d, err := startDaemon(ctx, rs.binary, rs.memLimit, cfgFile, dir, sc.args...)
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := d.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	rs.log.Info().Str("scenario", sc.name).Int("targets", res.targets).Int("pid", d.cmd.Process.Pid).
		Str("listen", d.addr).Msg("daemon ready; warming up")
	if sc.maxRSSEver > 0 {
		// RSS over time, not only the peak: growth shows before it hurts.
		stopRSS := make(chan struct{})
		rssDone := make(chan []rssSample)
		go sampleRSS(d.cmd.Process.Pid, 10*time.Second, stopRSS, rssDone)
		defer func() {
			close(stopRSS)
			res.rss = <-rssDone
		}()
	}

	client := &http.Client{Timeout: time.Minute}
	metricsURL := "http://" + d.addr + "/metrics"
	// The window's edges only need three families; name[] spares encoding
	// and parsing the rest (the daemon still gathers everything).
	snapURL := metricsURL + "?name[]=vantage_check_runs_total" +
		"&name[]=vantage_scheduler_start_delay_seconds&name[]=vantage_scheduler_skipped_runs_total"
	began := time.Now()
	shopCPU0, err := cpuTime(os.Getpid())
	if err != nil {
		return res, err
	}

	take := func(at time.Time) (snapshot, error) {
		if err := d.sleepUntil(ctx, at); err != nil {
			return snapshot{}, err
		}
		// Counters first, then CPU: the scrape's own cost falls outside the
		// window at its start and is not reached at its end.
		t := time.Now()
		fams, _, _, err := scrape(ctx, client, snapURL)
		if err != nil {
			return snapshot{}, err
		}
		s := readSnapshot(fams)
		s.at = t
		if s.cpu, err = cpuTime(d.cmd.Process.Pid); err != nil {
			return snapshot{}, err
		}
		return s, nil
	}
	s0, err := take(began.Add(rs.warmup))
	if err != nil {
		return res, err
	}
	// Measure the window's end from its start, so scrape time at the start
	// does not shorten the window.
	s1, err := take(s0.at.Add(rs.duration - rs.warmup))
	if err != nil {
		return res, err
	}
	shopCPU1, err := cpuTime(os.Getpid())
	if err != nil {
		return res, err
	}
	res.loadEnd = loadAvg()
	if sc.profile && rs.profile > 0 {
		rs.log.Info().Str("scenario", sc.name).Dur("duration", rs.profile).Msg("window done; CPU profile")
		if res.profile, err = takeProfile(ctx, rs.binary, d.addr, dir, rs.profile, 15); err != nil {
			return res, err
		}
	}
	rs.log.Info().Str("scenario", sc.name).Msg("window done; timing scrapes")

	wall := s1.at.Sub(s0.at)
	res.window = wall
	runs := s1.totalRuns() - s0.totalRuns()
	res.rate = runs / wall.Seconds()
	if runs > 0 {
		res.successShare = (s1.runs["success"] - s0.runs["success"]) / runs
		res.cpuPer1000 = time.Duration(float64(s1.cpu-s0.cpu) / (runs / 1000))
	}
	res.cpuCores = (s1.cpu - s0.cpu).Seconds() / wall.Seconds()
	res.shopCores = (shopCPU1 - shopCPU0).Seconds() / time.Since(began).Seconds()
	delay := deltaBuckets(s0.delay, s1.delay)
	if len(delay) > 0 {
		res.delayRuns = delay[len(delay)-1].cum
	}
	res.delayP50, res.p50Exact = bucketQuantile(0.5, delay)
	res.delayP99, res.p99Exact = bucketQuantile(0.99, delay)
	res.skipped = s1.skipped - s0.skipped

	if sc.maxScrape > 0 {
		// A scrape far past the target is a result, not a harness failure.
		client = &http.Client{Timeout: 6 * sc.maxScrape}
	}
	var times []time.Duration
	for range rs.scrapes {
		fams, n, took, err := scrape(ctx, client, metricsURL)
		if err != nil {
			if sc.maxScrape > 0 && ctx.Err() == nil {
				res.scrapeErr = fmt.Sprintf("text scrape: %v", err)
				break
			}
			return res, err
		}
		times = append(times, took)
		res.scrapeBytes = n
		res.series = countSeries(fams)
	}
	res.scrapeMedian = median(times)
	times = times[:0]
	for range rs.scrapes {
		_, took, err := fetch(ctx, client, metricsURL, protoAccept)
		if err != nil {
			if sc.maxScrape > 0 && ctx.Err() == nil {
				res.scrapeErr += fmt.Sprintf(" protobuf scrape: %v", err)
				break
			}
			return res, err
		}
		times = append(times, took)
	}
	res.scrapeProtoMedian = median(times)

	pid := d.cmd.Process.Pid
	if res.peakRSS, err = procKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM"); err != nil {
		return res, err
	}
	if res.pss, err = procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss"); err != nil {
		return res, err
	}
	return res, nil
}

// countSeries counts the samples a scrape exposes (each histogram bucket,
// sum and count counts once).
func countSeries(fams map[string]*dto.MetricFamily) int {
	n := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetHistogram() != nil:
				n += len(m.GetHistogram().GetBucket()) + 3
			case m.GetSummary() != nil:
				n += len(m.GetSummary().GetQuantile()) + 2
			default:
				n++
			}
		}
	}
	return n
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// daemon is a running vantage process.
type daemon struct {
	cmd     *exec.Cmd
	addr    string
	logFile string
	exited  chan struct{}
	waitErr error
}

// startDaemon runs `vantage run` on cfgFile and waits until /-/ready answers.
func startDaemon(ctx context.Context, binary, memLimit, cfgFile, dir string, extra ...string) (*daemon, error) {
	return startDaemonEnv(ctx, binary, memLimit, nil, cfgFile, dir, extra...)
}

// startDaemonEnv is startDaemon with env added to the daemon's environment.
func startDaemonEnv(ctx context.Context, binary, memLimit string, env []string, cfgFile, dir string, extra ...string) (*daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{"run",
		"--config.file=" + cfgFile,
		"--web.listen-address=" + addr,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--log.level=warn"}, extra...)...)
	cmd.Env = append(os.Environ(), env...)
	if memLimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+memLimit)
	}
	return startProcess(ctx, cmd, addr, filepath.Join(dir, "daemon.log"), "/-/ready")
}

// startProcess starts cmd, which listens on addr, with its output in
// logFile, and waits until readyPath answers 200.
func startProcess(ctx context.Context, cmd *exec.Cmd, addr, logFile, readyPath string) (*daemon, error) {
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child holds its own descriptor
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	d := &daemon{cmd: cmd, addr: addr, logFile: logFile, exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()

	readyURL := "http://" + addr + readyPath
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			_ = d.stop()
			return nil, fmt.Errorf("%s not ready after 60s (last error: %v)%s", filepath.Base(cmd.Path), err, d.logTail())
		}
		if err := d.sleepUntil(ctx, time.Now().Add(100*time.Millisecond)); err != nil {
			_ = d.stop()
			return nil, err
		}
	}
}

// sleepUntil waits for t, failing early if the daemon dies or ctx ends.
func (d *daemon) sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-d.exited:
		return fmt.Errorf("daemon exited early: %v%s", d.waitErr, d.logTail())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop ends the daemon with SIGTERM, then SIGKILL if it lingers.
func (d *daemon) stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		var ee *exec.ExitError
		if d.waitErr != nil && !errors.As(d.waitErr, &ee) {
			return d.waitErr
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("daemon ignored SIGTERM for 15s; killed%s", d.logTail())
	}
}

// logTail is the end of the daemon's log, for error messages.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.logFile)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-10):]
	return "\ndaemon log (last lines):\n  " + strings.Join(lines, "\n  ")
}

// freeAddr picks a loopback port nobody listens on. Another process could
// take it before the daemon binds; the daemon then fails loudly.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// loopbackConfig is n http checks of one loopback target, differing by URL.
func loopbackConfig(url string, n int, interval time.Duration) string {
	var b strings.Builder
	b.Grow(n * 100)
	fmt.Fprintf(&b, "# vantage benchmark configuration: one loopback target (generated)\nglobal:\n  interval: %s\n  timeout: 5s\n  location: bench\n\nchecks:\n", dur(interval))
	for i := range n {
		fmt.Fprintf(&b, "  - {name: scale-%06d, type: http, url: \"%s/?c=%d\", expect: {status: [200]}}\n", i, url, i)
	}
	return b.String()
}

// sampleRSS reads the process's VmRSS every period until stop closes, then
// sends what it saw.
func sampleRSS(pid int, period time.Duration, stop <-chan struct{}, out chan<- []rssSample) {
	start := time.Now()
	var got []rssSample
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if n, err := procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS"); err == nil {
			got = append(got, rssSample{after: time.Since(start).Round(time.Second), bytes: n})
		}
		select {
		case <-stop:
			out <- got
			return
		case <-t.C:
		}
	}
}
