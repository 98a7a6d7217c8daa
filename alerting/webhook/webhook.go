// Package webhook is the generic webhook notifier: it POSTs the
// Alertmanager webhook JSON (version "4"), so receivers written for
// Alertmanager work unchanged. The HTTP delivery it shares with the slack
// and alertmanager notifiers is alerting.Poster.
package webhook

import (
	"context"
	"fmt"
	"maps"
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
	post         *alerting.Poster
}

// Notifier must satisfy the dispatcher's interface.
var _ alerting.Notifier = (*Notifier)(nil)

// New builds a webhook notifier from its config.
func New(cfg checks.Notifier, opts alerting.NotifierOptions) (*Notifier, error) {
	p, err := alerting.NewPoster(cfg, cfg.URL, opts)
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
		batch = alerting.FiringOnly(batch)
	}
	if len(batch) == 0 {
		return nil
	}
	body, err := alerting.Encode(BuildMessage(n.name, n.externalURL, batch))
	if err != nil {
		return &alerting.SendError{Permanent: true, Err: fmt.Errorf("encode webhook message: %w", err)}
	}
	return n.post.PostJSON(ctx, body)
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
			Status:       alerting.StatusOf(nt),
			Labels:       alerting.LabelsOf(nt),
			Annotations:  maps.Clone(nt.Instance.Annotations),
			StartsAt:     alerting.StartOf(nt),
			GeneratorURL: nt.GeneratorURL,
		}
		if a.Status == "firing" {
			m.Status = "firing"
		} else {
			a.EndsAt = alerting.EndOf(nt)
		}
		if a.Annotations == nil {
			a.Annotations = map[string]string{} // {} as Alertmanager sends, not null
		}
		a.Fingerprint = model.LabelSet(toLabelSet(a.Labels)).Fingerprint().String()
		m.Alerts = append(m.Alerts, a)
		if i == 0 {
			m.CommonLabels = maps.Clone(a.Labels)
			m.CommonAnnotations = maps.Clone(a.Annotations)
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

// intersect keeps in common only the pairs also in m.
func intersect(common, m map[string]string) {
	for k, v := range common {
		if w, ok := m[k]; !ok || w != v {
			delete(common, k)
		}
	}
}
