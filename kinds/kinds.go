// Package kinds wires every check kind and notifier type vantage runs:
// adding one is its own package plus one line in All. A kind's package
// declares its type name, its config keys, their validation and schema
// and its prober (probe.Kind); a notifier's, its type, config and
// constructor (alerting.NotifierKind). The commands use this package, and
// so do tests that run a whole daemon, so a new kind is wired everywhere
// at once: the config loader, the schema, the daemon and vantage once.
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

// Set is a list of check kinds and notifier types, in the order messages
// and the schema list them.
type Set struct {
	Kinds     []probe.Kind
	Notifiers []alerting.NotifierKind
}

// All returns every check kind and notifier type. bo configures the
// browser kind's prober; nil leaves the prober out (a daemon then reports
// browser checks as having no prober), while configs may still hold them.
func All(bo *browser.Options) *Set {
	return &Set{
		Kinds: []probe.Kind{
			httpprobe.Kind{},
			browser.Kind{Options: bo},
			tcpprobe.Kind{},
			dnsprobe.Kind{},
		},
		Notifiers: []alerting.NotifierKind{
			alertmanager.Kind{},
			webhook.Kind{},
			slack.Kind{},
		},
	}
}

// Registry is the config side of the set: what the loader accepts and
// the schema describes.
func (s *Set) Registry() *checks.Registry {
	r := checks.NewRegistry()
	for _, k := range s.Kinds {
		r.AddKind(k)
	}
	for _, n := range s.Notifiers {
		r.AddNotifier(n)
	}
	return r
}

// Probers returns a prober per check type, each logging with its kind.
func (s *Set) Probers(log zerolog.Logger) map[string]probe.Prober {
	ps := map[string]probe.Prober{}
	for _, k := range s.Kinds {
		if p := k.NewProber(log.With().Str("kind", k.Type()).Logger()); p != nil {
			ps[k.Type()] = p
		}
	}
	return ps
}

// Factories returns a constructor per notifier type.
func (s *Set) Factories() map[string]alerting.NotifierFactory {
	fs := map[string]alerting.NotifierFactory{}
	for _, n := range s.Notifiers {
		fs[n.Type()] = n.New
	}
	return fs
}

// Registry is All's config side.
func Registry() *checks.Registry { return All(nil).Registry() }

// Probers is All(bo)'s probers.
func Probers(log zerolog.Logger, bo *browser.Options) map[string]probe.Prober {
	return All(bo).Probers(log)
}

// Notifiers is All's notifier constructors.
func Notifiers() map[string]alerting.NotifierFactory { return All(nil).Factories() }
