package kindtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
)

// CaptureConfig is a capture notifier's own keys.
type CaptureConfig struct {
	// Channel is sent with every message.
	Channel string `yaml:"channel"`
}

// Capture is the capture notifier type: it posts each batch as JSON
// ({"channel": ..., "alerts": [{"alertname": ..., "status": ...}]}).
type Capture struct{}

// Type implements checks.NotifierKind.
func (Capture) Type() string { return "capture" }

// NewConfig implements checks.NotifierKind.
func (Capture) NewConfig() any { return &CaptureConfig{} }

// Finish implements checks.NotifierKind.
func (Capture) Finish(v *checks.Validator, n *checks.Notifier) {
	if n.Spec.(*CaptureConfig).Channel == "" {
		v.Errorf(v.At(n.Pos, "channel"), "capture notifier needs channel")
	}
}

// SchemaDocs implements the schema's optional method of a notifier type.
func (Capture) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{Fields: map[string]string{"Notifier.channel": "The channel named in every message (capture)."}}
}

// New implements alerting.NotifierKind.
func (Capture) New(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) {
	return &capture{name: c.Name, url: c.URL, channel: c.Spec.(*CaptureConfig).Channel,
		client: &http.Client{Timeout: time.Duration(c.Timeout)}}, nil
}

type capture struct {
	name, url, channel string
	client             *http.Client
}

func (c *capture) Name() string { return c.name }

// CaptureMessage is what a capture notifier posts.
type CaptureMessage struct {
	Channel string         `json:"channel"`
	Alerts  []CaptureAlert `json:"alerts"`
}

// CaptureAlert is one notification of a CaptureMessage.
type CaptureAlert struct {
	Alertname string `json:"alertname"`
	Check     string `json:"check"`
	Status    string `json:"status"`
}

func (c *capture) Send(ctx context.Context, batch []alerting.Notification) error {
	msg := CaptureMessage{Channel: c.channel}
	for _, n := range batch {
		msg.Alerts = append(msg.Alerts, CaptureAlert{Alertname: n.Instance.Labels["alertname"],
			Check: n.Instance.Labels["check"], Status: n.Status})
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return &alerting.SendError{Err: err}
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &alerting.SendError{Status: resp.StatusCode, Err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	return nil
}
