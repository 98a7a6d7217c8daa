// Package webhook is the generic webhook notifier: it POSTs the
// Alertmanager webhook JSON (version "4"), so receivers written for
// Alertmanager work unchanged. It also holds the HTTP delivery shared with
// the slack and alertmanager notifiers (Poster, Options).
package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
)

// Message is the body Alertmanager's webhook receiver sends (version "4").
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Notifier posts Alertmanager webhook JSON to one URL.
type Notifier struct {
	name         string
	sendResolved bool
	externalURL  string
	post         *Poster
}

// Notifier must satisfy the dispatcher's interface.
var _ alerting.Notifier = (*Notifier)(nil)

// New builds a webhook notifier from its config.
func New(cfg checks.Notifier, opts Options) (*Notifier, error) {
	p, err := NewPoster(cfg, cfg.URL, opts)
	if err != nil {
		return nil, err
	}
	return &Notifier{
		name:         cfg.Name,
		sendResolved: cfg.SendResolved == nil || *cfg.SendResolved,
		externalURL:  opts.ExternalURL,
		post:         p,
	}, nil
}

// Name is the notifier's configured name.
func (n *Notifier) Name() string { return n.name }

// Send makes one delivery attempt. Resolved notifications are dropped when
// send_resolved is false; a batch left empty is a successful no-op.
func (n *Notifier) Send(ctx context.Context, batch []alerting.Notification) error {
	if !n.sendResolved {
		batch = Firing(batch)
	}
	if len(batch) == 0 {
		return nil
	}
	body, err := Encode(BuildMessage(n.name, n.externalURL, batch))
	if err != nil {
		return &alerting.SendError{Permanent: true, Err: fmt.Errorf("encode webhook message: %w", err)}
	}
	return n.post.PostJSON(ctx, body)
}

// Firing returns the firing notifications of batch.
func Firing(batch []alerting.Notification) []alerting.Notification {
	var out []alerting.Notification
	for _, nt := range batch {
		if Status(nt) == "firing" {
			out = append(out, nt)
		}
	}
	return out
}

// Status is "firing" or "resolved"; a notification without one is resolved
// when it has an end time.
func Status(nt alerting.Notification) string {
	switch nt.Status {
	case "firing", "resolved":
		return nt.Status
	}
	if !nt.EndsAt.IsZero() || nt.Instance.State == alerting.Resolved {
		return "resolved"
	}
	return "firing"
}

// StartsAt is when the episode started firing.
func StartsAt(nt alerting.Notification) time.Time {
	switch {
	case !nt.StartsAt.IsZero():
		return nt.StartsAt.UTC()
	case !nt.Instance.FiredAt.IsZero():
		return nt.Instance.FiredAt.UTC()
	}
	return nt.Instance.ActiveAt.UTC()
}

// EndsAt is when a resolved notification's episode ended (zero when it is
// unknown).
func EndsAt(nt alerting.Notification) time.Time {
	if !nt.EndsAt.IsZero() {
		return nt.EndsAt.UTC()
	}
	return nt.Instance.ResolvedAt.UTC()
}

// Labels returns the instance's labels without empty values: an empty
// label is an absent one in Prometheus, and Alertmanager drops them too.
func Labels(nt alerting.Notification) map[string]string {
	out := make(map[string]string, len(nt.Instance.Labels))
	for k, v := range nt.Instance.Labels {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// BuildMessage renders batch as Alertmanager's webhook message. The group
// is the batch: groupLabels is {alertname} when all alerts share one (what
// an Alertmanager route grouped by alertname would send) and groupKey is
// formatted like Alertmanager's root route key. Firing alerts carry a zero
// endsAt, as Alertmanager's own webhook does.
func BuildMessage(receiver, externalURL string, batch []alerting.Notification) Message {
	m := Message{
		Version:           "4",
		Status:            "resolved",
		Receiver:          receiver,
		GroupLabels:       map[string]string{},
		CommonLabels:      map[string]string{},
		CommonAnnotations: map[string]string{},
		ExternalURL:       externalURL,
		Alerts:            make([]Alert, 0, len(batch)),
	}
	for i, nt := range batch {
		a := Alert{
			Status:       Status(nt),
			Labels:       Labels(nt),
			Annotations:  copyMap(nt.Instance.Annotations),
			StartsAt:     StartsAt(nt),
			GeneratorURL: nt.GeneratorURL,
		}
		if a.Status == "firing" {
			m.Status = "firing"
		} else {
			a.EndsAt = EndsAt(nt)
		}
		a.Fingerprint = model.LabelSet(toLabelSet(a.Labels)).Fingerprint().String()
		m.Alerts = append(m.Alerts, a)
		if i == 0 {
			m.CommonLabels = copyMap(a.Labels)
			m.CommonAnnotations = copyMap(a.Annotations)
		} else {
			intersect(m.CommonLabels, a.Labels)
			intersect(m.CommonAnnotations, a.Annotations)
		}
	}
	if name, ok := m.CommonLabels["alertname"]; ok {
		m.GroupLabels["alertname"] = name
	}
	m.GroupKey = "{}:" + toLabelSet(m.GroupLabels).String()
	return m
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// intersect keeps in common only the pairs also in m.
func intersect(common, m map[string]string) {
	for k, v := range common {
		if w, ok := m[k]; !ok || w != v {
			delete(common, k)
		}
	}
}
