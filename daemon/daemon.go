// Package daemon assembles a running vantage: config, paths, scheduler,
// metrics and the web server, with reloads. cmd/vantage only parses flags
// and calls it; tests, the demo and the benchmarks build it directly.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/health"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/metrics"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
	"github.com/vantage-monitoring/vantage/stats"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/timeline"
	"github.com/vantage-monitoring/vantage/web"
)

// Options configure a Daemon.
type Options struct {
	ConfigFile    string
	WebConfigFile string
	StoragePath   string
	Retention     time.Duration
	Shard         probe.Shard
	MaxConcurrent int
	Logger        zerolog.Logger
	// Kinds are the check kinds and notifier types the config may name
	// (kinds.Registry()).
	Kinds *checks.Registry
	// Probers maps a check type to its kind.
	Probers map[string]probe.Prober
	// Getenv expands ${VAR}; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// Registry receives every metric; nil means a fresh one with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// Sinks receive observations in addition to the metrics collector.
	Sinks []probe.Sink
	// Notifiers maps a notifier type to its constructor. Alerting runs
	// only with storage (its state and queue live there).
	Notifiers map[string]alerting.NotifierFactory
	// EvalInterval is the alert evaluation cadence (default 10s).
	EvalInterval time.Duration
	// ExternalURL is where people reach this daemon (links in alerts).
	ExternalURL string
	// Limits bound the config at start and on every reload (zero fields:
	// checks.DefaultLimits).
	Limits checks.Limits
}

// Daemon is one running vantage.
type Daemon struct {
	opts Options
	log  zerolog.Logger
	reg  *prometheus.Registry
	// sources are /metrics: reg, then the per-target families.
	sources []web.Source
	metrics *metrics.Collector
	stats   *stats.Stats
	sched   *probe.Scheduler
	web     *web.Server
	store   *storage.Store // nil without --storage.path
	alerts  *alerting.Manager
	certs   *certSink
	status  *statusSink // latest run per target, for the status page
	health  *health.Monitor
	nodes   *stats.NodeDetector

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge

	mu    sync.Mutex // serialises reloads
	cfg   *checks.Config
	paths map[string]*netpath.Path
	ready bool
}

// New loads the config and builds the daemon; an invalid config is an
// error listing every problem, and nothing is started.
func New(o Options) (*Daemon, error) {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	cfg, err := o.Kinds.LoadWithLimits(o.ConfigFile, o.Getenv, o.Limits)
	if err != nil {
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	reg.MustRegister(versioncollector.NewCollector("vantage"))
	d := &Daemon{
		opts: o, log: o.Logger, reg: reg, cfg: cfg,
		metrics: metrics.New(cfg),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vantage_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vantage_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload."}),
	}
	d.stats = stats.New(stats.Options{Config: cfg})
	// In-daemon statistics carry the same labels as the check series.
	statsExport := metrics.NewStatsExport(d.stats, d.metrics)
	reg.MustRegister(d.reloadOK, d.reloadTime)
	// The per-target families stream straight to /metrics; for formats the
	// streaming encoder does not write they are gathered from registries
	// of their own, one family at a time, to bound scrape memory.
	d.sources = []web.Source{{Gatherers: []prometheus.Gatherer{reg}}}
	for _, s := range []struct {
		st    expo.Streamer
		views []prometheus.Collector
	}{{d.metrics, d.metrics.Views()}, {statsExport, []prometheus.Collector{statsExport}}} {
		src := web.Source{Streamer: s.st}
		for _, v := range s.views {
			r := prometheus.NewRegistry()
			r.MustRegister(v)
			src.Gatherers = append(src.Gatherers, r)
		}
		d.sources = append(d.sources, src)
	}
	d.paths, err = buildPaths(cfg, nil)
	if err != nil {
		return nil, err
	}
	d.certs, d.status = newCertSink(), newStatusSink()
	d.health = health.New(health.Options{Registerer: reg})
	d.health.SetThreshold(time.Duration(cfg.Global.NodeDetection.MinExcess))
	d.nodes = stats.NewNodeDetector()
	sinks := append([]probe.Sink{d.metrics, d.stats, d.certs, d.status}, o.Sinks...)
	if o.StoragePath != "" {
		d.store, err = storage.Open(o.StoragePath, storage.Options{Retention: o.Retention, Logger: o.Logger, Registerer: reg})
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, d.store.Sink())
	}
	d.sched = probe.NewScheduler(probe.SchedulerOptions{
		Logger: o.Logger, Registerer: reg, Probers: o.Probers, Sinks: sinks,
		MaxConcurrent: o.MaxConcurrent, Shard: o.Shard, Lag: d.health.Observe,
		NodeChange: d.nodeChange,
	})
	if d.store != nil {
		meas := &measures{st: d.stats, certs: d.certs, now: time.Now, det: d.nodes, health: d.health, cfg: d.Config}
		reg.MustRegister(newNodeCollector(d.nodes, time.Now, d.Config, 3*d.evalInterval()))
		d.alerts = alerting.NewManager(alerting.ManagerOptions{
			Logger: o.Logger.With().Str("component", "alerting").Logger(), Registerer: reg, Store: d.store,
			Factories: o.Notifiers, Series: func() []alerting.Series {
				return meas.series(d.metrics.Labeler(), d.sched.Targets(), d.usesDomains())
			},
			Measures:     meas,
			EvalInterval: o.EvalInterval, ExternalURL: o.ExternalURL, Version: version.Version,
		})
		if err := d.alerts.Configure(withBuiltinAlerts(cfg)); err != nil {
			d.store.Close()
			return nil, err
		}
	}
	d.web = web.New(web.Options{
		Logger: o.Logger, Sources: d.sources, Registerer: reg, Reload: d.Reload,
		Ready: d.readiness, WebConfigFile: o.WebConfigFile,
	})
	if d.store != nil {
		web.NewAPI(web.APIOptions{Store: d.store, Logger: o.Logger, Location: time.Local,
			Redact: func(s string) string { return d.Config().Secrets.Redact(s) }}).Register(d.web)
	}
	if err := d.registerStatus(); err != nil {
		if d.store != nil {
			d.store.Close()
		}
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.log.Warn().Msg(cfg.Secrets.Redact(w.Error()))
	}
	return d, nil
}

// buildPaths makes one netpath.Path per configured path, reusing old ones
// whose definition did not change.
func buildPaths(cfg *checks.Config, old map[string]*netpath.Path) (map[string]*netpath.Path, error) {
	out := map[string]*netpath.Path{}
	for i := range cfg.Paths {
		pc := cfg.Paths[i]
		if op, ok := old[pc.Name]; ok {
			oc := op.Config()
			if oc.Fingerprint() == pc.Fingerprint() {
				out[pc.Name] = op
				continue
			}
		}
		p, err := netpath.New(pc)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", pc.Name, err)
		}
		out[pc.Name] = p
	}
	return out, nil
}

// Registry is the daemon's main metrics registry (the per-target families
// live in registries of their own, served from /metrics).
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Stats is the daemon's in-process statistics (quantiles, ratios, slowdown).
func (d *Daemon) Stats() *stats.Stats { return d.stats }

// Scheduler is the daemon's scheduler.
func (d *Daemon) Scheduler() *probe.Scheduler { return d.sched }

// Web is the HTTP server, for adding routes before Run.
func (d *Daemon) Web() *web.Server { return d.web }

// Config is the running config.
func (d *Daemon) Config() *checks.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// readiness is ready once the first config is applied. A kind that cannot
// work (Chromium missing) does not make the daemon unready, since every
// other kind keeps probing, but its reason is shown.
func (d *Daemon) readiness() (bool, string) {
	d.mu.Lock()
	ready := d.ready
	d.mu.Unlock()
	if !ready {
		return false, "config not applied yet"
	}
	var notes []string
	for _, typ := range slices.Sorted(maps.Keys(d.opts.Probers)) {
		if r, ok := d.opts.Probers[typ].(interface{ Ready() (bool, string) }); ok {
			if ok, why := r.Ready(); !ok {
				notes = append(notes, fmt.Sprintf("%s checks unavailable: %s", typ, why))
			}
		}
	}
	return true, strings.Join(notes, "\n")
}

// usesDomains reports whether any alert rule needs browser domain series.
func (d *Daemon) usesDomains() bool {
	for _, a := range d.Config().Alerts {
		if a.Expr.Measure == "domain_error_ratio" || a.Expr.Measure == "domain_p90" {
			return true
		}
	}
	return false
}

// evalInterval is the alert evaluation cadence: verdicts older than a few
// of them are stale.
func (d *Daemon) evalInterval() time.Duration {
	if d.opts.EvalInterval > 0 {
		return d.opts.EvalInterval
	}
	return 10 * time.Second
}

// Alerts is the alert manager, or nil without storage.
func (d *Daemon) Alerts() *alerting.Manager { return d.alerts }

// Reload re-reads the config file. A config that fails validation keeps
// the running one; every problem is logged and returned. So does one that
// would remove every running check without saying allow_empty: true, the
// likely result of a truncated or mistaken file.
func (d *Daemon) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := d.opts.Kinds.LoadWithLimits(d.opts.ConfigFile, d.opts.Getenv, d.opts.Limits)
	if err == nil && len(cfg.Checks) == 0 && len(d.cfg.Checks) > 0 && !cfg.AllowEmpty {
		err = checks.Errors{{Pos: checks.Pos{File: cfg.File}, Msg: fmt.Sprintf(
			"the config defines no checks; refusing to remove all %d running checks (set allow_empty: true at the top level to allow it)",
			len(d.cfg.Checks))}}
	}
	if err == nil {
		var paths map[string]*netpath.Path
		paths, err = buildPaths(cfg, d.paths)
		if err == nil && d.alerts != nil {
			err = d.alerts.Configure(withBuiltinAlerts(cfg))
		}
		if err == nil {
			diff := timeline.DiffConfigs(d.cfg, cfg)
			d.apply(cfg, paths)
			d.event(storage.Event{Kind: storage.ConfigReload, Detail: diff.Summary(), Data: diff.JSON()})
			d.reloadOK.Set(1)
			d.reloadTime.SetToCurrentTime()
			d.log.Info().Int("checks", len(cfg.Checks)).Msg("config reloaded")
			return nil
		}
	}
	d.reloadOK.Set(0)
	d.event(storage.Event{Kind: storage.ConfigReloadFailed, Detail: d.cfg.Secrets.Redact(err.Error())})
	var list checks.Errors
	if errors.As(err, &list) {
		for _, e := range list {
			d.log.Error().Msg("config reload rejected: " + e.Error())
		}
	} else {
		d.log.Error().Err(err).Msg("config reload rejected; keeping the running config")
	}
	return err
}

func (d *Daemon) apply(cfg *checks.Config, paths map[string]*netpath.Path) {
	d.cfg, d.paths = cfg, paths
	d.health.SetThreshold(time.Duration(cfg.Global.NodeDetection.MinExcess))
	d.metrics.Configure(cfg)
	d.stats.Configure(cfg)
	d.sched.Apply(cfg, paths)
	for _, w := range cfg.Warnings {
		d.log.Warn().Msg(cfg.Secrets.Redact(w.Error()))
	}
}

// Run starts probing and serving on l until ctx ends.
func (d *Daemon) Run(ctx context.Context, l net.Listener) error {
	d.mu.Lock()
	d.apply(d.cfg, d.paths)
	d.reloadOK.Set(1)
	d.reloadTime.SetToCurrentTime()
	d.ready = true
	d.mu.Unlock()
	d.log.Info().Str("listen", l.Addr().String()).Int("checks", len(d.cfg.Checks)).
		Int("paths", len(d.cfg.Paths)).Msg("vantage started")
	// Targets behind `resolve: all` appear once DNS answers, so the start
	// event counts checks and paths, not targets.
	d.event(storage.Event{Kind: storage.DaemonStart, Detail: fmt.Sprintf("%d checks over %d paths", len(d.Config().Checks), len(d.Config().Paths))})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var alertsDone chan struct{}
	if d.alerts != nil {
		if err := d.alerts.Restore(ctx); err != nil {
			d.log.Error().Err(err).Msg("restoring alert state; starting without it")
		}
		alertsDone = make(chan struct{})
		go func() { defer close(alertsDone); d.alerts.Run(ctx) }()
	}
	go d.health.Run(ctx)
	errc := make(chan error, 2)
	go func() { errc <- d.sched.Run(ctx) }()
	go func() { errc <- d.web.Serve(ctx, l) }()
	err := <-errc
	cancel()
	if err2 := <-errc; err == nil {
		err = err2
	}
	if alertsDone != nil {
		<-alertsDone
	}
	for _, typ := range slices.Sorted(maps.Keys(d.opts.Probers)) {
		if c, ok := d.opts.Probers[typ].(io.Closer); ok {
			if cerr := c.Close(); cerr != nil {
				d.log.Warn().Err(cerr).Str("kind", typ).Msg("closing check kind")
			}
		}
	}
	d.log.Info().Msg("vantage stopped")
	if d.store != nil {
		d.event(storage.Event{Kind: storage.DaemonStop})
		if cerr := d.store.Close(); cerr != nil {
			d.log.Error().Err(cerr).Msg("closing storage")
		}
	}
	return err
}

// Store is the daemon's storage, or nil when it runs without one.
func (d *Daemon) Store() *storage.Store { return d.store }

// nodeChange records a node joining or leaving a check's DNS answer.
func (d *Daemon) nodeChange(c *checks.Check, path string, n *probe.Node, added bool) {
	e := storage.Event{Kind: storage.NodeRemoved, Check: c.Name, Path: path, Node: n.Label(),
		TargetKey: probe.TargetKey(c.Name, path, n), Detail: n.Addr.String() + " left the DNS answer"}
	if added {
		e.Kind, e.Detail = storage.NodeAdded, n.Addr.String()+" joined the DNS answer"
	}
	d.event(e)
}

// event records a timeline event; a storage failure is logged, never fatal.
func (d *Daemon) event(e storage.Event) {
	if d.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.store.AppendEvent(ctx, e); err != nil {
		d.log.Error().Err(err).Str("kind", string(e.Kind)).Msg("recording timeline event")
	}
}
