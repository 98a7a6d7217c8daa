package main

import (
	"github.com/alecthomas/kingpin/v2"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/alertmanager"
	"github.com/vantage-monitoring/vantage/alerting/slack"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/browser"
	"github.com/vantage-monitoring/vantage/probe/dnsprobe"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
	"github.com/vantage-monitoring/vantage/probe/tcpprobe"
)

// probers wires every check kind: adding a kind is one line here.
func probers(log zerolog.Logger, bo browser.Options) map[string]probe.Prober {
	bo.Logger = log.With().Str("kind", "browser").Logger()
	return map[string]probe.Prober{
		"http":    httpprobe.New(log.With().Str("kind", "http").Logger()),
		"tcp":     tcpprobe.New(log.With().Str("kind", "tcp").Logger()),
		"dns":     dnsprobe.New(log.With().Str("kind", "dns").Logger()),
		"browser": browser.New(bo),
	}
}

// browserFlags are the browser kind's command-line options.
type browserFlags struct {
	path          *string
	maxConcurrent *int
	noSandbox     *bool
}

func addBrowserFlags(c *kingpin.CmdClause) browserFlags {
	return browserFlags{
		path:          c.Flag("browser.path", "Chromium binary for browser checks.").Default(browser.DefaultExecPath).String(),
		maxConcurrent: c.Flag("browser.max-concurrent", "Maximum number of browser runs at once.").Default("2").Int(),
		noSandbox:     c.Flag("browser.no-sandbox", "Run Chromium without its sandbox even as a non-root user (for container runtimes without user namespaces; as root it is always off).").Bool(),
	}
}

// options builds browser.Options; artifacts go under storage (empty: none).
func (f browserFlags) options(storage string) browser.Options {
	return browser.Options{ExecPath: *f.path, MaxConcurrent: *f.maxConcurrent, StorageDir: storage, NoSandbox: *f.noSandbox}
}

// notifiers wires every notifier type: adding one is one line here.
func notifiers() map[string]alerting.NotifierFactory {
	return map[string]alerting.NotifierFactory{
		"alertmanager": func(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) {
			return alertmanager.New(c, o)
		},
		"webhook": func(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) {
			return webhook.New(c, o)
		},
		"slack": func(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) { return slack.New(c, o) },
	}
}
