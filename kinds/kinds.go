// Package kinds wires every check kind and notifier type into the maps the
// daemon takes: adding one is its own package plus one line here. The
// commands use it, and so do tests that run a whole daemon, so a new kind
// is wired everywhere at once.
package kinds

import (
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

// Probers returns a prober per check type, each logging with its kind.
// bo configures the browser kind; nil leaves it out (a daemon then reports
// browser checks as having no prober).
func Probers(log zerolog.Logger, bo *browser.Options) map[string]probe.Prober {
	ps := map[string]probe.Prober{
		"http": httpprobe.New(log.With().Str("kind", "http").Logger()),
		"tcp":  tcpprobe.New(log.With().Str("kind", "tcp").Logger()),
		"dns":  dnsprobe.New(log.With().Str("kind", "dns").Logger()),
	}
	if bo != nil {
		o := *bo
		o.Logger = log.With().Str("kind", "browser").Logger()
		ps["browser"] = browser.New(o)
	}
	return ps
}

// Notifiers returns a factory per notifier type.
func Notifiers() map[string]alerting.NotifierFactory {
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
