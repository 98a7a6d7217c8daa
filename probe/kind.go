package probe

import (
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
)

// Kind is one check kind as its package declares it: its config section
// (checks.Kind: type name, keys, validation) and its prober. kinds/kinds.go
// lists one per kind.
type Kind interface {
	checks.Kind
	// NewProber returns the kind's prober, logging with log, or nil when
	// the kind cannot run here (a daemon then reports its checks as having
	// no prober).
	NewProber(log zerolog.Logger) Prober
}
