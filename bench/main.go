// Command bench is `make bench`: it runs the vantage daemon as a separate
// process against the in-process demo shop under two loads (plain HTTP and
// TLS), measures throughput, CPU, memory, scheduler start delay and /metrics
// cost from outside the daemon, runs the repository's Go micro-benchmarks,
// and writes everything, with the command and the machine, to BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

func main() {
	out := flag.String("out", "BENCHMARKS.md", "Markdown file to write (\"\" prints only).")
	binary := flag.String("binary", "./vantage", "vantage binary to benchmark (built by `make build`).")
	memLimit := flag.String("gomemlimit", "210MiB", "GOMEMLIMIT for the daemon (the Go runtime's soft memory limit; \"\" for none).")
	duration := flag.Duration("duration", 60*time.Second, "How long the daemon runs per scenario, warm-up included.")
	warmup := flag.Duration("warmup", 12*time.Second, "Time before the measured window; longer than the interval so every target has run.")
	scrapes := flag.Int("scrapes", 5, "Timed /metrics scrapes at the end of each scenario.")
	only := flag.String("scenarios", "plain-http,tls", "Comma-separated scenarios to run (plain-http, tls; empty for none).")
	micro := flag.Bool("micro", true, "Run the Go micro-benchmarks (go test -bench) too.")
	benchtime := flag.String("benchtime", "200ms", "-benchtime for the micro-benchmarks.")
	count := flag.Int("count", 5, "-count for the micro-benchmarks; the table shows medians.")
	alertLat := flag.Bool("alert-latency", true, "Measure fault-to-page alert latency in the demo (about 4 minutes).")
	flag.Parse()

	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	if *warmup >= *duration {
		log.Fatal().Msgf("-warmup %s must be shorter than -duration %s", *warmup, *duration)
	}
	if *scrapes < 1 || *count < 1 {
		log.Fatal().Msg("-scrapes and -count must be at least 1")
	}
	if _, err := os.Stat(*binary); err != nil && *only != "" {
		log.Fatal().Err(err).Msg("vantage binary missing; run `make build` or pass -binary")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := report{
		command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		started: time.Now().UTC(),
		machine: readMachine(ctx),
	}
	rs := runSettings{binary: *binary, memLimit: *memLimit, duration: *duration, warmup: *warmup, scrapes: *scrapes, tmp: os.TempDir(), log: log}
	failed := false
	for _, sc := range scenarios() {
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
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			log.Fatal().Err(err).Msg("writing report")
		}
		log.Info().Str("file", *out).Msg("report written")
	}
	if failed || ctx.Err() != nil {
		os.Exit(1)
	}
}

// scenarios are the loads of SPEC's benchmark: 10,000 plain-HTTP targets
// and 3,000 TLS targets, each at a 10 s interval over the shop's 3 nodes.
func scenarios() []scenario {
	return []scenario{
		{name: "plain-http", checks: 3334, scheme: "http", interval: 10 * time.Second,
			minRateShare: 0.98, maxDelayP99: 10 * time.Millisecond, maxRSS: 250e6, maxScrape: 500 * time.Millisecond},
		{name: "tls", checks: 1000, scheme: "https", interval: 10 * time.Second,
			minRateShare: 0.98},
	}
}

func contains(list, name string) bool {
	for s := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}
