// Command bench is `make bench`: it runs the vantage daemon as a separate
// process against the in-process demo shop under two loads (plain HTTP and
// TLS), measures throughput, CPU, memory, scheduler start delay and /metrics
// cost from outside the daemon, runs the repository's Go micro-benchmarks,
// and writes everything, with the command and the machine, to BENCHMARKS.md.
//
// With -detection it runs only the detection benchmark instead (`make
// bench-detection`, about 45 minutes): one daemon watching several copies
// of the demo shop, one healthy and the others with lb2 slowed on a share
// of its responses, and it rewrites only its own section of BENCHMARKS.md.
// A plain run keeps that section as it is.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/probe/browser"
)

func main() {
	out := flag.String("out", "BENCHMARKS.md", "Markdown file to write (\"\" prints only).")
	binary := flag.String("binary", "./vantage", "vantage binary to benchmark (built by `make build`).")
	memLimit := flag.String("gomemlimit", "210MiB", "GOMEMLIMIT for the daemon (the Go runtime's soft memory limit; \"\" for none).")
	duration := flag.Duration("duration", 60*time.Second, "How long the daemon runs per scenario, warm-up included.")
	warmup := flag.Duration("warmup", 12*time.Second, "Time before the measured window; longer than the interval so every target has run.")
	scrapes := flag.Int("scrapes", 5, "Timed /metrics scrapes at the end of each scenario.")
	only := flag.String("scenarios", "plain-http,tls,scale-100k", "Comma-separated scenarios to run (plain-http, tls, scale-100k; empty for none).")
	scaleDur := flag.Duration("scale.duration", 10*time.Minute, "How long the scale-100k daemon runs, its 75 s warm-up included.")
	profile := flag.Duration("profile", 20*time.Second, "CPU profile of the plain-http daemon after its window, summarised in the report (0: none).")
	vsBlackbox := flag.String("blackbox", "http,https,https-x25519", "Side-by-side comparisons with blackbox_exporter to run (http, https, https-x25519: TLS with vantage offering X25519 only as blackbox_exporter does; empty for none).")
	cs := compareSettings{}
	flag.StringVar(&cs.blackbox, "blackbox.binary", "prometheus-blackbox-exporter", "blackbox_exporter binary (Debian's package name; `make deps` installs it).")
	flag.Float64Var(&cs.rate, "blackbox.rate", 400, "Probes per second for each exporter in the comparison.")
	flag.DurationVar(&cs.interval, "blackbox.interval", time.Second, "vantage's check interval in the comparison (checks = rate × interval).")
	compareRounds := flag.Int("blackbox.rounds", 3, "Rounds of each side-by-side comparison, interleaved; the report shows the round with the median ratio and lists every round's.")
	flag.DurationVar(&cs.scrapeInt, "blackbox.scrape-interval", 15*time.Second, "How often each exporter's /metrics is scraped during the comparison.")
	micro := flag.Bool("micro", true, "Run the Go micro-benchmarks (go test -bench) too.")
	benchtime := flag.String("benchtime", "200ms", "-benchtime for the micro-benchmarks.")
	count := flag.Int("count", 5, "-count for the micro-benchmarks; the table shows medians.")
	alertLat := flag.Bool("alert-latency", true, "Measure fault-to-page alert latency in the demo (about 4 minutes).")
	detection := flag.Bool("detection", false, "Run only the detection benchmark (make bench-detection; about 45 minutes with the defaults) and rewrite only its section of -out.")
	do := detectionOptions{}
	flag.IntVar(&do.trials, "detection.trials", 5, "Faults per faulted copy.")
	flag.DurationVar(&do.on, "detection.on", 5*time.Minute, "How long each fault stays on.")
	flag.DurationVar(&do.off, "detection.off", 3*time.Minute, "Healthy time after each fault (and the range of the random start phase).")
	flag.DurationVar(&do.warmup, "detection.warmup", 2*time.Minute, "Healthy time before any fault (at least the alert windows, so the detector has a baseline).")
	flag.DurationVar(&do.interval, "detection.interval", 10*time.Second, "Check interval of the demo config.")
	flag.DurationVar(&do.latency, "detection.latency", 1500*time.Millisecond, "Latency added to the slowed responses of lb2.")
	ratios := flag.String("detection.ratios", "1,0.3,0.1", "Comma-separated shares of lb2's responses slowed, one shop copy each (plus the healthy copy).")
	flag.IntVar(&do.burners, "detection.burners", 2, "CPU-burning processes running for the whole benchmark.")
	flag.BoolVar(&do.browser, "detection.browser", true, "Run the browser journey on the healthy copy (needs Chromium).")
	flag.StringVar(&do.chromium, "detection.chromium", browser.DefaultExecPath, "Chromium binary for the browser journey.")
	flag.Uint64Var(&do.seed, "detection.seed", 0, "Seed of the start phases and the shops' fault randomness (0: from the clock; the report prints it).")
	flag.StringVar(&do.notificationsOut, "detection.notifications", "", "JSON-lines file for every notification received (default: a new file in the temporary directory).")
	flag.Parse()

	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	if *detection {
		do.log = log
		var err error
		if do.ratios, err = parseRatios(*ratios); err != nil {
			log.Fatal().Err(err).Msg("-detection.ratios")
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := detectionMain(ctx, do, *out)
		stop()
		os.Exit(code)
	}
	if *warmup >= *duration {
		log.Fatal().Msgf("-warmup %s must be shorter than -duration %s", *warmup, *duration)
	}
	if *scrapes < 1 || *count < 1 {
		log.Fatal().Msg("-scrapes and -count must be at least 1")
	}
	if _, err := os.Stat(*binary); err != nil && (*only != "" || *vsBlackbox != "") {
		log.Fatal().Err(err).Msg("vantage binary missing; run `make build` or pass -binary")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := report{
		command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		started: time.Now().UTC(),
		machine: readMachine(ctx),
	}
	rs := runSettings{binary: *binary, memLimit: *memLimit, duration: *duration, warmup: *warmup, scrapes: *scrapes, tmp: os.TempDir(), log: log, profile: *profile}
	failed := false
	for _, sc := range scenarios(*scaleDur) {
		if !contains(*only, sc.name) {
			continue
		}
		log.Info().Str("scenario", sc.name).Dur("duration", *duration).Msg("starting")
		res, err := sc.run(ctx, rs)
		if err != nil {
			log.Error().Err(err).Str("scenario", sc.name).Msg("scenario failed")
			failed = true
			rep.errors = append(rep.errors, fmt.Sprintf("scenario %s: %v", sc.name, err))
			continue
		}
		rep.results = append(rep.results, res)
		if ctx.Err() != nil {
			break
		}
	}
	if *vsBlackbox != "" && cs.rate <= 0 {
		log.Fatal().Msg("-blackbox.rate must be positive")
	}
	// Rounds interleave the comparisons (http, https, ..., http, ...) so a
	// change in the shared machine's load falls on every comparison; each
	// row reports the round with the median ratio and lists all of them.
	rounds := map[string][]compareResult{}
	var order []comparison
	for round := range max(*compareRounds, 1) {
		for _, c := range comparisons() {
			if !contains(*vsBlackbox, c.name) || ctx.Err() != nil {
				continue
			}
			if round == 0 {
				order = append(order, c)
			}
			log.Info().Str("comparison", c.name).Int("round", round+1).Float64("rate", cs.rate).Dur("duration", *duration).Msg("starting side-by-side with blackbox_exporter")
			res, err := c.run(ctx, rs, cs)
			if err != nil {
				log.Error().Err(err).Str("comparison", c.name).Msg("comparison failed")
				failed = true
				rep.errors = append(rep.errors, fmt.Sprintf("comparison with blackbox_exporter (%s, round %d): %v", c.name, round+1, err))
				continue
			}
			rounds[c.name] = append(rounds[c.name], res)
		}
	}
	for _, c := range order {
		if rs := rounds[c.name]; len(rs) > 0 {
			rep.compare = append(rep.compare, medianRound(rs))
		}
	}
	rep.compareSettings = cs
	if *micro && ctx.Err() == nil {
		rep.microCmd = fmt.Sprintf("go test -run='^$' -bench=. -benchmem -benchtime=%s -count=%d <packages with benchmarks>", *benchtime, *count)
		pkgs, err := benchPackages(ctx)
		if err == nil && len(pkgs) > 0 {
			log.Info().Strs("packages", pkgs).Msg("running micro-benchmarks")
			rep.micro, err = runMicro(ctx, pkgs, *benchtime, *count, os.Stderr)
		}
		if err != nil {
			failed = true
			rep.errors = append(rep.errors, "micro-benchmarks: "+err.Error())
		}
	}

	var alertMD string
	if *alertLat && ctx.Err() == nil {
		log.Info().Msg("measuring alert latency (about 4 minutes)")
		var err error
		if alertMD, err = alertLatency(ctx, os.Stderr); err != nil {
			failed = true
			rep.errors = append(rep.errors, err.Error())
		}
	}
	md := rep.markdown() + alertMD
	fmt.Print(md)
	log.Info().Msg("the detection benchmark is a separate target (about 45 minutes): make bench-detection")
	if *out != "" {
		// Keep the detection benchmark's section: only -detection rewrites it.
		if old, err := os.ReadFile(*out); err == nil {
			if sec := section(string(old), detectionHeading); sec != "" {
				md = spliceSection(md, detectionHeading, sec)
			}
		}
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			log.Fatal().Err(err).Msg("writing report")
		}
		log.Info().Str("file", *out).Msg("report written")
	}
	if failed || ctx.Err() != nil {
		os.Exit(1)
	}
}

// scenarios are the loads of the benchmark: 10,000 plain-HTTP targets and
// 3,000 TLS targets, each at a 10 s interval over the shop's 3 nodes, and
// 100,000 plain-HTTP targets at 60 s for scaleDuration.
func scenarios(scaleDuration time.Duration) []scenario {
	return []scenario{
		{name: "plain-http", checks: 3334, scheme: "http", interval: 10 * time.Second,
			minRateShare: 0.98, maxDelayP99: 10 * time.Millisecond, maxRSS: 250e6, maxScrape: 500 * time.Millisecond, profile: true},
		{name: "tls", checks: 1000, scheme: "https", interval: 10 * time.Second,
			minRateShare: 0.98},
		// 100,000 plain-HTTP targets at 60 s on one loopback target: memory
		// over time and whether a full scrape fits Prometheus' timeout.
		{name: "scale-100k", checks: 100000, scheme: "http", interval: time.Minute, loopback: true,
			warmup: 75 * time.Second, duration: scaleDuration, memLimit: "900MiB", args: []string{"--config.max-checks=100000"},
			minRateShare: 0.98, maxDelayP99: 50 * time.Millisecond, maxRSSEver: 1 << 30, maxScrape: 10 * time.Second},
	}
}

// detectionMain runs the detection benchmark, prints its section and
// splices it into out; the exit code is 1 when it failed.
func detectionMain(ctx context.Context, o detectionOptions, out string) int {
	log := o.log
	setup := detectionSetup{
		command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		machine: readMachine(ctx),
	}
	if err := o.validate(); err != nil {
		log.Error().Err(err).Msg("invalid flags")
		return 2
	}
	log.Info().Msgf("detection benchmark: at most %.1f minutes", o.plannedDuration().Minutes())
	figs, setup, err := runDetection(ctx, o, setup)
	if err != nil {
		log.Error().Err(err).Msg("detection benchmark failed")
		return 1
	}
	md := figs.markdown(setup)
	fmt.Print(md)
	if out != "" {
		old, err := os.ReadFile(out)
		if err != nil && !os.IsNotExist(err) {
			log.Error().Err(err).Msg("reading report")
			return 1
		}
		if err := os.WriteFile(out, []byte(spliceSection(string(old), detectionHeading, md)), 0o644); err != nil {
			log.Error().Err(err).Msg("writing report")
			return 1
		}
		log.Info().Str("file", out).Msg("detection section written")
	}
	if len(setup.errors) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func parseRatios(s string) ([]float64, error) {
	var rs []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func contains(list, name string) bool {
	for s := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}
