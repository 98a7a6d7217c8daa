// Command vantage is the synthetic, customer-perspective monitoring daemon.
// This file only parses flags and wires packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/internal/once"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/schema"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/timeline"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// terminated is how kingpin's end of help output (its terminate call)
// unwinds out of app.Parse; see parseArgs.
type terminated int

// parseArgs parses args; ended reports that kingpin printed help (or the
// usage, for a missing command) and asked to exit with code.
func parseArgs(app *kingpin.Application, args []string) (cmd string, ended bool, code int, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, ok := r.(terminated)
			if !ok {
				panic(r)
			}
			ended, code = true, int(t)
		}
	}()
	cmd, err = app.Parse(args)
	return cmd, false, 0, err
}

// run is main without the exit, so tests can call it.
func run(args []string, stdout, stderr io.Writer) int {
	fillVersion()
	app := kingpin.New("vantage", "Synthetic, customer-perspective monitoring: every node, every path, like a customer.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	// kingpin calls terminate after printing help. A no-op (run must return,
	// not exit) let parsing go on: the usage came twice, then the command ran
	// with its flags unset. Unwinding stops it there.
	app.Terminate(func(code int) { panic(terminated(code)) })
	pastHelp := false // parsing reached the command: help was not asked for
	app.Action(func(*kingpin.ParseContext) error { pastHelp = true; return nil })
	app.HelpFlag.Short('h')
	logLevel := app.Flag("log.level", "Only log messages with this severity or above: debug, info, warn, error.").Default("info").String()
	logFormat := app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").Enum("logfmt", "json")

	runCmd := app.Command("run", "Run the daemon.")
	runRules := rulesFor(runCmd)
	runConfig := addConfigFlags(runCmd, runRules)
	runConfig.addMemoryFlag(runCmd, runRules)
	listen := runCmd.Flag("web.listen-address", "Address to listen on for the API, status page and metrics.").Default(":9947").String()
	webConfig := runCmd.Flag("web.config.file", "Path to a web configuration file enabling TLS or authentication (exporter-toolkit format).").Default("").String()
	storagePath := runCmd.Flag("storage.path", "Directory for the database and artifacts.").Default("data/").String()
	retention := runCmd.Flag("storage.retention", "How long to keep timeline events, runs and artifacts.").Default("14d").String()
	shard := runCmd.Flag("shard", "Run only targets whose hash mod N == I, as I/N.").Default("").String()
	externalURL := runCmd.Flag("web.external-url", "The URL under which vantage is reached by people (links in alerts). Default: derived from the listen address.").Default("").String()
	evalInterval := runCmd.Flag("alerting.eval-interval", "How often alert rules are evaluated.").Default("10s").Duration()
	maxConc := runCmd.Flag("probe.max-concurrent", "Maximum number of probes in flight.").Default("512").Int()
	runBrowser := addBrowserFlags(runCmd, runRules)
	runRules.positive("alerting.eval-interval", evalInterval)
	runRules.atLeast("probe.max-concurrent", maxConc, 1)

	validateCmd := app.Command("validate", "Check a configuration file without running it.")
	validateConfig := addConfigFlags(validateCmd, rulesFor(validateCmd))

	onceCmd := app.Command("once", "Run each selected check once over every path and node and print the results.")
	onceRules := rulesFor(onceCmd)
	onceConfig := addConfigFlags(onceCmd, onceRules)
	onceChecks := onceCmd.Flag("check", "Only run this check (repeatable; globs allowed).").Strings()
	onceOutput := onceCmd.Flag("output", "Output format: table or json.").Default("table").Enum("table", "json")
	onceStorage := onceCmd.Flag("storage.path", "Directory for artifacts (browser screenshots, waterfalls).").Default("data/").String()
	onceBrowser := addBrowserFlags(onceCmd, onceRules)

	demoCmd := app.Command("demo", "Start the built-in demo shop and a daemon watching it.")
	demoFlags := addDemoFlags(demoCmd)

	timelineCmd := app.Command("timeline", "Print the incident timeline for a post-mortem.")
	tlStorage := timelineCmd.Flag("storage.path", "Directory of the database.").Default("data/").String()
	tlSince := timelineCmd.Flag("since", "Start: RFC 3339 time or a duration back from now.").Default("2h").String()
	tlUntil := timelineCmd.Flag("until", "End: RFC 3339 time or a duration back from now.").Default("").String()
	tlFormat := timelineCmd.Flag("format", "markdown or json.").Default("markdown").Enum("markdown", "json")
	tlZone := timelineCmd.Flag("timezone", "Time zone of the printed times: Local, UTC or an IANA name such as Europe/Amsterdam.").Default("Local").String()
	tlAll := timelineCmd.Flag("all", "Also print what never paged (pending alerts that never fired, DOWN/UP without an alert) in a collapsed appendix.").Bool()
	tlIncident := timelineCmd.Flag("incident", "Print only the incident with this ID (as in its header, e.g. 20251128-200300-lb2).").Default("").String()

	versionCmd := app.Command("version", "Print version information.")
	schemaCmd := app.Command("schema", "Print the JSON Schema of the configuration file (for editors).")

	cmd, ended, code, err := parseArgs(app, args)
	if ended {
		if pastHelp { // the usage for a missing command, not help
			fmt.Fprintln(stderr, "vantage:", kingpin.ErrCommandNotSpecified)
			return 2
		}
		if code != 0 { // help on an unknown command: a usage error
			return 2
		}
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "vantage:", err)
		return 2
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "vantage:", err)
		return 2
	}

	switch cmd {
	case versionCmd.FullCommand():
		fmt.Fprintln(stdout, version.Print("vantage"))
		return 0

	case schemaCmd.FullCommand():
		b, err := schema.JSON(kinds.Registry())
		if err != nil {
			fmt.Fprintln(stderr, "vantage:", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0

	case validateCmd.FullCommand():
		cfg, err := kinds.Registry().LoadWithLimits(*validateConfig.file, os.LookupEnv, validateConfig.limits())
		if err != nil {
			checks.WriteErrors(stderr, err)
			return 1
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stderr, "warning:", cfg.Secrets.Redact(w.Error()))
		}
		fmt.Fprintf(stdout, "%s: valid: %d checks, %d paths, %d alerts, %d notifiers\n",
			*validateConfig.file, len(cfg.Checks), len(cfg.Paths), len(cfg.Alerts), len(cfg.Notifiers))
		return 0

	case onceCmd.FullCommand():
		set := kinds.All(onceBrowser.options(*onceStorage))
		return once.Run(set.Registry(), set.Probers(log), *onceConfig.file, onceConfig.limits(), *onceChecks, *onceOutput, stdout, stderr)

	case timelineCmd.FullCommand():
		return runTimeline(*tlStorage, *tlSince, *tlUntil, *tlFormat, *tlZone, timeline.Options{All: *tlAll, Incident: *tlIncident}, stdout, stderr)

	case demoCmd.FullCommand():
		return runDemo(demoFlags, log, stdout, stderr)

	case runCmd.FullCommand():
		sh, err := probe.ParseShard(*shard)
		if err != nil {
			fmt.Fprintln(stderr, "vantage:", err)
			return 2
		}
		ret, err := model.ParseDuration(*retention)
		if err != nil {
			fmt.Fprintln(stderr, "vantage: --storage.retention:", err)
			return 2
		}
		if ret <= 0 { // storage would keep everything forever
			fmt.Fprintln(stderr, "vantage: --storage.retention must be more than 0s, got", ret)
			return 2
		}
		lim := runConfig.limits()
		lim.Shards = sh.Count
		d, err := daemon.New(daemon.Options{
			ConfigFile: *runConfig.file, Limits: lim, WebConfigFile: *webConfig, StoragePath: *storagePath,
			Retention: time.Duration(ret), Shard: sh, MaxConcurrent: *maxConc, Logger: log,
			Kinds: kinds.Registry(), Probers: kinds.Probers(log, runBrowser.options(*storagePath)), Notifiers: kinds.Notifiers(),
			EvalInterval: *evalInterval, ExternalURL: externalOrDefault(*externalURL, *listen),
		})
		if err != nil {
			checks.WriteErrors(stderr, err)
			return 1
		}
		l, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(stderr, "vantage:", err)
			return 1
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		reloadOnSIGHUP(d)
		if err := d.Run(ctx, l); err != nil {
			log.Error().Err(err).Msg("daemon failed")
			return 1
		}
		return 0
	}
	return 2
}

// runTimeline prints the stored timeline; it opens the database read-only,
// so it works next to a running daemon.
func runTimeline(dir, since, until, format, zone string, o timeline.Options, stdout, stderr io.Writer) int {
	loc, err := timeline.ParseLocation(zone)
	if err != nil {
		fmt.Fprintln(stderr, "vantage: --timezone:", err)
		return 2
	}
	from, to, err := timeline.ParseRange(since, until, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "vantage:", err)
		return 2
	}
	st, err := storage.Open(timelineStorageDir(dir), storage.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(stderr, "vantage:", err)
		return 1
	}
	defer st.Close()
	evs, err := st.Events(context.Background(), from, to)
	if err != nil {
		fmt.Fprintln(stderr, "vantage:", err)
		return 1
	}
	o.Location = loc
	if format == "json" {
		err = timeline.JSON(stdout, evs, from, to, o)
	} else {
		err = timeline.Markdown(stdout, evs, from, to, o)
	}
	if err != nil {
		fmt.Fprintln(stderr, "vantage:", err)
		return 1
	}
	return 0
}

// externalOrDefault derives a link base from the listen address when
// --web.external-url is not given.
func externalOrDefault(external, listen string) string {
	if external != "" {
		return external
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// reloadOnSIGHUP reloads d's config on every SIGHUP, as Prometheus does.
func reloadOnSIGHUP(d *daemon.Daemon) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = d.Reload() // a rejected config is logged and kept out
		}
	}()
}
