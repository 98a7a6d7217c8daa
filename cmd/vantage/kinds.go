package main

import (
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/dnsprobe"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
	"github.com/vantage-monitoring/vantage/probe/tcpprobe"
)

// probers wires every check kind: adding a kind is one line here.
func probers(log zerolog.Logger) map[string]probe.Prober {
	return map[string]probe.Prober{
		"http": httpprobe.New(log.With().Str("kind", "http").Logger()),
		"tcp":  tcpprobe.New(log.With().Str("kind", "tcp").Logger()),
		"dns":  dnsprobe.New(log.With().Str("kind", "dns").Logger()),
	}
}
