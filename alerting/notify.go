package alerting

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
)

// NotifierOptions are what every notifier type is built with, so the
// manager builds one and hands it to whichever type a config names.
type NotifierOptions struct {
	Logger zerolog.Logger
	// Version goes into the User-Agent ("vantage/<version>").
	Version string
	// ExternalURL is vantage's own address (the status page), used for
	// links and the webhook's externalURL.
	ExternalURL string
	// Client replaces the client built from the notifier's http_config
	// (auth, TLS, proxy then do not apply). Redirects are still not
	// followed.
	Client *http.Client
	// Now is the clock (alertmanager lease, slack times); default time.Now.
	Now func() time.Time
	// FlapWindow is global.flap_window, for wording ("in the last hour");
	// default 1h.
	FlapWindow time.Duration
}

// Notification is one alert instance as a notifier sends it.
type Notification struct {
	Instance Instance
	// Status is "firing" or "resolved".
	Status string
	// StartsAt is when the instance started firing; EndsAt is set when
	// resolved (Alertmanager reads a past EndsAt as resolved).
	StartsAt, EndsAt time.Time
	// GeneratorURL links back to the status page.
	GeneratorURL string
}

// Notifier delivers notifications to one receiver. One package per
// notifier type implements it; delivery (queue, retries, backoff) is the
// dispatcher's, so a Notifier only makes one attempt.
type Notifier interface {
	Name() string
	// Send makes one delivery attempt for a batch. An error that should not
	// be retried (a 4xx other than 429) is a *SendError with Permanent set.
	Send(ctx context.Context, batch []Notification) error
}

// LeaseHolder is a notifier whose receiver forgets a firing alert it has
// not heard about for Lease (Alertmanager's endsAt) and groups, inhibits
// and repeats alerts itself. The dispatcher sends such a notifier every
// alert without folding and re-sends firing ones every resend_interval.
type LeaseHolder interface {
	Lease() time.Duration
}

// SendError describes a failed attempt.
type SendError struct {
	Status    int    // HTTP status, 0 when none
	Body      string // start of the response body, for the log
	Permanent bool   // retrying will not help
	Err       error
}

func (e *SendError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("receiver answered %d: %s", e.Status, e.Body)
	}
	return e.Err.Error()
}

func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err says retrying cannot help.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// NotifierKind is one notifier type as its package declares it: its config
// section (checks.NotifierKind) and its constructor. kinds/kinds.go lists
// one per type. Its retry and re-send policy is a capability of the
// notifier it builds (LeaseHolder), not a name the dispatcher checks.
type NotifierKind interface {
	checks.NotifierKind
	New(c checks.Notifier, o NotifierOptions) (Notifier, error)
}
