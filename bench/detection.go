package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting/webhook"
	vdaemon "github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe/browser"
)

// detectionOptions are the detection benchmark's flags.
type detectionOptions struct {
	trials           int
	on, off, warmup  time.Duration
	interval         time.Duration
	latency          time.Duration
	ratios           []float64
	burners          int
	browser          bool
	chromium         string
	seed             uint64
	notificationsOut string
	log              zerolog.Logger
}

// pageTarget is how soon the node page must come for lb2 slowed on ratio
// of its responses (0: no target for other ratios).
func pageTarget(ratio float64) time.Duration {
	switch ratio {
	case 1:
		return 30 * time.Second
	case 0.3:
		return 60 * time.Second
	case 0.1:
		return 120 * time.Second
	}
	return 0
}

// copyName names a copy by its fault: "healthy", "slow100", "slow30"…
func copyName(ratio float64) string {
	if ratio == 0 {
		return "healthy"
	}
	return fmt.Sprintf("slow%d", int(math.Round(ratio*100)))
}

// plannedDuration is how long the bench runs for o (the latest possible
// start phase included).
func (o detectionOptions) plannedDuration() time.Duration {
	return o.warmup + o.off + time.Duration(o.trials)*(o.on+o.off)
}

func (o detectionOptions) validate() error {
	var errs []error
	if o.trials < 1 {
		errs = append(errs, fmt.Errorf("-detection.trials %d: want at least 1", o.trials))
	}
	if o.on <= 0 || o.off <= 0 || o.warmup < 0 {
		errs = append(errs, fmt.Errorf("-detection.on and -detection.off must be positive and -detection.warmup not negative"))
	}
	if o.interval <= 0 || o.latency <= 0 {
		errs = append(errs, fmt.Errorf("-detection.interval and -detection.latency must be positive"))
	}
	if len(o.ratios) == 0 {
		errs = append(errs, fmt.Errorf("-detection.ratios: want at least one share, e.g. 1,0.3,0.1"))
	}
	seen := map[string]bool{}
	for _, r := range o.ratios {
		if r <= 0 || r > 1 {
			errs = append(errs, fmt.Errorf("-detection.ratios: %g is not in (0, 1]", r))
		}
		if seen[copyName(r)] {
			errs = append(errs, fmt.Errorf("-detection.ratios: %g is listed twice", r))
		}
		seen[copyName(r)] = true
	}
	// Copies live on 127.0.11.0/24, 127.0.12.0/24, …
	if len(o.ratios)+1 > 200 {
		errs = append(errs, fmt.Errorf("-detection.ratios: too many copies"))
	}
	if o.burners < 0 {
		errs = append(errs, fmt.Errorf("-detection.burners must not be negative"))
	}
	return errors.Join(errs...)
}

// copyPlan is one running shop copy and its fault schedule.
type copyPlan struct {
	spec   shopCopy
	shop   *demo.Shop
	starts []time.Time // planned fault starts
}

// runDetection runs the whole benchmark and returns its figures and setup.
func runDetection(ctx context.Context, o detectionOptions, setup detectionSetup) (_ detectionFigures, _ detectionSetup, err error) {
	log := o.log
	if err := o.validate(); err != nil {
		return detectionFigures{}, setup, err
	}
	if o.browser {
		if _, err := os.Stat(o.chromium); err != nil {
			return detectionFigures{}, setup, fmt.Errorf("the healthy copy's browser journey needs Chromium: %w (install it with `make deps`, or pass -detection.browser=false)", err)
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	setup.interval, setup.latency = o.interval, o.latency
	setup.on, setup.off, setup.warmup = o.on, o.off, o.warmup
	setup.trials, setup.burners, setup.browser, setup.seed = o.trials, o.burners, o.browser, o.seed

	dir, err := os.MkdirTemp("", "vantage-bench-detection-")
	if err != nil {
		return detectionFigures{}, setup, err
	}
	defer os.RemoveAll(dir)

	rec, err := startRecorder("127.0.0.1:0", log)
	if err != nil {
		return detectionFigures{}, setup, err
	}
	defer rec.close()

	timeout := 5 * time.Second
	if o.interval <= timeout {
		timeout = o.interval / 2
	}
	ratios := append([]float64{0}, o.ratios...)
	var plans []*copyPlan
	defer func() {
		for _, p := range plans {
			if cerr := p.shop.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("stopping shop %s: %w", p.spec.Name, cerr)
			}
		}
	}()
	var parts []copyConfig
	for k, r := range ratios {
		name := copyName(r)
		// Copy k lives on 127.0.(11+k).0/24: nodes .11–.13, API .21, CDN
		// .31, DNS and fault control on .10, the alt-source path from .2.
		net3 := byte(11 + k)
		ip := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, net3, last}) }
		spec := shopCopy{Name: name, Ratio: r, PageTarget: pageTarget(r)}
		var nodes []demo.Node
		for i := range 3 {
			n := demo.Node{Name: fmt.Sprintf("%s-lb%d", name, i+1), IP: ip(byte(11 + i))}
			nodes = append(nodes, n)
			spec.Nodes = append(spec.Nodes, nodeID{n.Name, n.IP.String()})
		}
		spec.Bad = spec.Nodes[1]
		shop, err := demo.Start(ctx, demo.Options{
			Nodes: nodes, APIIP: ip(21), StaticIP: ip(31),
			DNSAddr: ip(10).String() + ":0", ControlAddr: ip(10).String() + ":0",
			Dir: filepath.Join(dir, name), Logger: zerolog.Nop(), Seed: o.seed + uint64(k) + 1,
		})
		if err != nil {
			return detectionFigures{}, setup, fmt.Errorf("starting shop %s: %w", name, err)
		}
		plans = append(plans, &copyPlan{spec: spec, shop: shop})
		cfg := shop.ConfigWithOptions(demo.ConfigOptions{Interval: o.interval, Timeout: timeout,
			AltSourceIP: ip(2).String(), Browser: r == 0 && o.browser, WebhookURL: rec.url()})
		parts = append(parts, copyConfig{prefix: name, yaml: cfg})
	}
	merged, err := mergeConfigs(parts)
	if err != nil {
		return detectionFigures{}, setup, err
	}
	cfgFile := filepath.Join(dir, "vantage.yaml")
	if err := os.WriteFile(cfgFile, []byte(merged), 0o644); err != nil {
		return detectionFigures{}, setup, err
	}

	burners, err := startBurners(o.burners)
	defer stopBurners(burners)
	if err != nil {
		return detectionFigures{}, setup, err
	}
	for _, b := range burners {
		log.Info().Int("pid", b.Process.Pid).Msg("CPU burner started")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return detectionFigures{}, setup, err
	}
	base := "http://" + l.Addr().String()
	dlog := log.Level(zerolog.WarnLevel).With().Str("component", "daemon").Logger()
	var bo *browser.Options
	if o.browser {
		bo = &browser.Options{ExecPath: o.chromium, MaxConcurrent: 2, StorageDir: filepath.Join(dir, "data")}
	}
	d, err := vdaemon.New(vdaemon.Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data"),
		Notifiers: kinds.Notifiers(), EvalInterval: 2 * time.Second, ExternalURL: base,
		Logger: dlog, Kinds: kinds.Registry(), Probers: kinds.Probers(dlog, bo)})
	if err != nil {
		_ = l.Close()
		return detectionFigures{}, setup, fmt.Errorf("daemon: %w", err)
	}
	dctx, stopDaemon := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(dctx, l) }()
	defer func() {
		stopDaemon()
		if rerr := <-runErr; rerr != nil && err == nil {
			err = fmt.Errorf("daemon: %w", rerr)
		}
	}()

	t0 := time.Now()
	setup.started = t0.UTC()
	rec.setStart(t0)
	rng := mrand.New(mrand.NewPCG(o.seed, o.seed^0x5bd1e995))
	benchEnd := t0
	for _, p := range plans[1:] {
		at := t0.Add(o.warmup + time.Duration(rng.Int64N(int64(o.off))))
		for range o.trials {
			p.starts = append(p.starts, at)
			at = at.Add(o.on + o.off)
		}
		benchEnd = maxTime(benchEnd, at) // the last fault's end plus its off time
	}
	log.Info().Str("daemon", base).Str("config", cfgFile).Int("copies", len(plans)).
		Time("ends_at", benchEnd).Msgf("detection benchmark running for %.1f minutes", benchEnd.Sub(t0).Minutes())

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(plans))
	for _, p := range plans[1:] {
		wg.Go(func() {
			if err := p.run(sctx, o, log); err != nil {
				errs <- fmt.Errorf("copy %s: %w", p.spec.Name, err)
				cancel()
			}
		})
	}
	select {
	case <-sleepCtx(sctx, time.Until(benchEnd)):
	case err := <-runErr:
		runErr <- err // for the deferred stop
		cancel()
		setup.errors = append(setup.errors, fmt.Sprintf("daemon stopped early: %v", err))
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		setup.errors = append(setup.errors, e.Error())
	}
	end := time.Now()
	setup.ended = end.UTC()
	setup.loadEnd = loadAvg()
	if ctx.Err() != nil {
		setup.errors = append(setup.errors, "interrupted before the planned end")
	}

	notices := rec.notices()
	if setup.notificationsLog, err = writeNotices(o.notificationsOut, notices); err != nil {
		setup.errors = append(setup.errors, "writing notifications: "+err.Error())
	}
	var copies []shopCopy
	for _, p := range plans {
		copies = append(copies, p.spec)
	}
	return analyze(copies, notices, t0, end), setup, nil
}

// run applies the copy's faults on schedule through the shop's fault
// control endpoint, recording when each was in force.
func (p *copyPlan) run(ctx context.Context, o detectionOptions, log zerolog.Logger) error {
	client := &http.Client{Timeout: 30 * time.Second}
	target := p.shop.ControlURL() + "/faults/" + p.spec.Bad.Name
	body := fmt.Sprintf(`{"latency":%q,"latency_ratio":%g}`, o.latency.String(), p.spec.Ratio)
	for i, at := range p.starts {
		if err := sleepUntil(ctx, at); err != nil {
			return nil // interrupted: the faults so far are the record
		}
		start := time.Now()
		if err := control(ctx, client, http.MethodPut, target, body); err != nil {
			return err
		}
		log.Info().Str("copy", p.spec.Name).Int("trial", i+1).Str("fault", body).Msgf("fault on %s", p.spec.Bad.Name)
		w := window{Start: start}
		sleepErr := sleepUntil(ctx, at.Add(o.on))
		w.End = time.Now()
		// Clear even when interrupted, so the record ends with the fault.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := control(cctx, client, http.MethodDelete, target, "")
		cancel()
		p.spec.Faults = append(p.spec.Faults, w)
		if err != nil {
			return err
		}
		log.Info().Str("copy", p.spec.Name).Int("trial", i+1).Msgf("fault off %s", p.spec.Bad.Name)
		if sleepErr != nil {
			return nil
		}
	}
	return nil
}

func control(ctx context.Context, client *http.Client, method, url, body string) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	<-sleepCtx(ctx, time.Until(t))
	return ctx.Err()
}

// sleepCtx is closed after d or when ctx ends, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		close(done)
	}()
	return done
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// startBurners starts n processes that each keep one core busy: the
// shared-host load the healthy copy must not page under.
func startBurners(n int) ([]*exec.Cmd, error) {
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			return cmds, fmt.Errorf("starting a CPU burner: %w", err)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// stopBurners kills the burners this harness started, by their PIDs.
func stopBurners(cmds []*exec.Cmd) {
	for _, c := range cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
}

// recorder is the loopback webhook receiver: it keeps every alert of
// every notification with the time it arrived.
type recorder struct {
	srv *http.Server
	ln  net.Listener
	log zerolog.Logger

	mu    sync.Mutex
	start time.Time
	got   []notice
}

func startRecorder(addr string, log zerolog.Logger) (*recorder, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	r := &recorder{ln: ln, log: log, start: time.Now()}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *recorder) url() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *recorder) close() { _ = r.srv.Close() }

func (r *recorder) setStart(t time.Time) {
	r.mu.Lock()
	r.start = t
	r.mu.Unlock()
}

func (r *recorder) notices() []notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	if req.Method != http.MethodPost {
		http.Error(w, "POST webhook JSON here", http.StatusMethodNotAllowed)
		return
	}
	var m webhook.Message
	if err := json.NewDecoder(io.LimitReader(req.Body, 4<<20)).Decode(&m); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, a := range m.Alerts {
		n := notice{At: at, Status: a.Status, Labels: a.Labels, Annotations: a.Annotations, GroupKey: m.GroupKey}
		r.got = append(r.got, n)
		r.log.Info().Str("at", "+"+at.Sub(r.start).Round(time.Second).String()).Str("status", strings.ToUpper(n.Status)).
			Str("alert", n.alertname()).Str("node", n.Labels["node"]).Str("check", n.Labels["check"]).
			Str("path", n.Labels["path"]).Msg(n.Annotations["summary"])
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// writeNotices writes one JSON object per notice to file (a new file in
// the temporary directory when file is ""), and returns its path.
func writeNotices(file string, ns []notice) (string, error) {
	var f *os.File
	var err error
	if file == "" {
		f, err = os.CreateTemp("", "vantage-bench-detection-*.jsonl")
	} else {
		f, err = os.Create(file)
	}
	if err != nil {
		return "", err
	}
	enc := json.NewEncoder(f)
	for _, n := range ns {
		if err := enc.Encode(n); err != nil {
			f.Close()
			return f.Name(), err
		}
	}
	return f.Name(), f.Close()
}
