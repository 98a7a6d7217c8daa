package webhook

import (
	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
)

// Kind is the webhook notifier type.
type Kind struct{}

// Type implements checks.NotifierKind.
func (Kind) Type() string { return "webhook" }

// NewConfig implements checks.NotifierKind: the type has no keys beyond
// those every notifier shares.
func (Kind) NewConfig() any { return nil }

// Finish implements checks.NotifierKind.
func (Kind) Finish(*checks.Validator, *checks.Notifier) {}

// New implements alerting.NotifierKind.
func (Kind) New(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) {
	return New(c, o)
}
