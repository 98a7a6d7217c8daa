package checks_test

import (
	. "github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/kinds"
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
