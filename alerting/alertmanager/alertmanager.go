// Package alertmanager delivers vantage alerts to a Prometheus
// Alertmanager through its API v2 (POST /api/v2/alerts), the way
// Prometheus itself does: firing alerts carry an endsAt lease in the near
// future, so Alertmanager resolves them on its own if vantage stops
// re-sending; resolved alerts carry the real end time.
package alertmanager

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
)

// Path is appended to the configured Alertmanager URL.
const Path = "/api/v2/alerts"

// LeaseFactor times the resend interval is how far in the future a firing
// alert's endsAt lies (Prometheus uses 4× its resend delay): missing three
// re-sends in a row is needed before Alertmanager resolves it by itself.
const LeaseFactor = 4

// PostableAlert is Alertmanager's API v2 postableAlert. It is declared
// here rather than imported from github.com/prometheus/alertmanager, whose
// generated models would pull go-openapi and the whole Alertmanager module
// graph into vantage for five JSON fields.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Notifier posts alerts to one Alertmanager.
type Notifier struct {
	name  string
	lease time.Duration
	now   func() time.Time
	post  *alerting.Poster
}

// Notifier must satisfy the dispatcher's interface.
var _ alerting.Notifier = (*Notifier)(nil)

// New builds an Alertmanager notifier. cfg.URL is the Alertmanager's base
// URL (with its route prefix, if any); a URL already ending in
// /api/v2/alerts is used as is.
func New(cfg checks.Notifier, opts alerting.NotifierOptions) (*Notifier, error) {
	endpoint, err := alertsURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", cfg.Name, err)
	}
	p, err := alerting.NewPoster(cfg, endpoint, opts)
	if err != nil {
		return nil, err
	}
	resend := time.Duration(cfg.ResendInterval)
	if resend <= 0 {
		resend = time.Minute
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Notifier{name: cfg.Name, lease: LeaseFactor * resend, now: now, post: p}, nil
}

func alertsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid url (want an absolute http or https URL)")
	}
	if !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), Path) {
		u.Path = strings.TrimSuffix(u.Path, "/") + Path
		u.RawPath = ""
	}
	return u.String(), nil
}

// Name is the notifier's configured name.
func (n *Notifier) Name() string { return n.name }

// Lease is how long a firing alert stays active in Alertmanager without a
// re-send.
func (n *Notifier) Lease() time.Duration { return n.lease }

// Send posts the batch in one request (one attempt). Alertmanager stores
// the valid alerts of a request and answers 400 naming the invalid ones,
// which is a permanent error for the whole batch.
func (n *Notifier) Send(ctx context.Context, batch []alerting.Notification) error {
	if len(batch) == 0 {
		return nil
	}
	body, err := alerting.Encode(Alerts(batch, n.now(), n.lease))
	if err != nil {
		return &alerting.SendError{Permanent: true, Err: fmt.Errorf("encode alerts: %w", err)}
	}
	return n.post.PostJSON(ctx, body)
}

// Alerts renders a batch as postable alerts at now. Firing alerts get
// endsAt = now+lease; resolved ones their end time (now if unknown), which
// Alertmanager reads as resolved once it is past.
func Alerts(batch []alerting.Notification, now time.Time, lease time.Duration) []PostableAlert {
	out := make([]PostableAlert, 0, len(batch))
	for _, nt := range batch {
		a := PostableAlert{
			Labels:       alerting.LabelsOf(nt),
			Annotations:  nt.Instance.Annotations,
			StartsAt:     alerting.StartOf(nt),
			GeneratorURL: nt.GeneratorURL,
		}
		if alerting.StatusOf(nt) == "firing" {
			a.EndsAt = now.Add(lease).UTC()
		} else {
			a.EndsAt = alerting.EndOf(nt)
			if a.EndsAt.IsZero() {
				a.EndsAt = now.UTC()
			}
		}
		// Alertmanager refuses an alert whose endsAt is before its startsAt.
		if !a.StartsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
			a.EndsAt = a.StartsAt
		}
		out = append(out, a)
	}
	return out
}
