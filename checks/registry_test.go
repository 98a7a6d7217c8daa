package checks_test

import (
	. "github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe/browser"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
)

// The tests load configs with every kind vantage runs, as the commands do.
var registry = kinds.Registry()

func Load(file string, getenv func(string) (string, bool)) (*Config, error) {
	return registry.Load(file, getenv)
}

func LoadWithLimits(file string, getenv func(string) (string, bool), lim Limits) (*Config, error) {
	return registry.LoadWithLimits(file, getenv, lim)
}

func Parse(data []byte, file string, getenv func(string) (string, bool)) (*Config, error) {
	return registry.Parse(data, file, getenv)
}

func ParseWithLimits(data []byte, file string, getenv func(string) (string, bool), lim Limits) (*Config, error) {
	return registry.ParseWithLimits(data, file, getenv, lim)
}

// httpOf is an http check's own config; c is a Check or *Check.
func httpOf(c any) *httpprobe.Config { return specOf(c).(*httpprobe.Config) }

// browserOf is a browser check's own config; c is a Check or *Check.
func browserOf(c any) *browser.Config { return specOf(c).(*browser.Config) }

func specOf(c any) any {
	if p, ok := c.(*Check); ok {
		return p.Spec
	}
	return c.(Check).Spec
}
