package kinds_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe/browser"
)

// Every check type of the config reference has a prober; the browser only when asked.
func TestProbers(t *testing.T) {
	if got := slices.Sorted(maps.Keys(kinds.Probers(zerolog.Nop(), &browser.Options{}))); !slices.Equal(got, []string{"browser", "dns", "http", "tcp"}) {
		t.Errorf("with a browser: %v", got)
	}
	if got := slices.Sorted(maps.Keys(kinds.Probers(zerolog.Nop(), nil))); !slices.Equal(got, []string{"dns", "http", "tcp"}) {
		t.Errorf("without a browser: %v", got)
	}
}

// Every notifier type has a factory that builds a working notifier: each
// sends the sample firing alert to a real receiver of its kind, and what
// arrived is that alert (Alertmanager lists it; the webhook receiver gets
// the message; Slack's gets text naming it).
func TestNotifiers(t *testing.T) {
	fs := kinds.Notifiers()
	if got := slices.Sorted(maps.Keys(fs)); !slices.Equal(got, []string{"alertmanager", "slack", "webhook"}) {
		t.Fatalf("notifier types %v", got)
	}
	fire := notifytest.Firing(time.Now().Add(-time.Minute).UTC().Truncate(time.Second))
	const alertname = "LoadBalancerNodeDegraded"
	for typ, f := range fs {
		t.Run(typ, func(t *testing.T) {
			var url string
			var arrived func() error
			switch typ {
			case "alertmanager":
				url = testenv.Alertmanager(t, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
				arrived = func() error {
					resp, err := http.Get(url + "/api/v2/alerts")
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					var got []struct {
						Labels map[string]string `json:"labels"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
						return err
					}
					if len(got) != 1 || got[0].Labels["alertname"] != alertname || got[0].Labels["node"] != "127.0.0.12" {
						return fmt.Errorf("alertmanager lists %+v", got)
					}
					return nil
				}
			default:
				rc := notifytest.NewReceiver(t, nil)
				url = rc.URL + "/hook"
				arrived = func() error {
					reqs := rc.Requests()
					if len(reqs) != 1 || reqs[0].Path != "/hook" {
						return fmt.Errorf("%d requests", len(reqs))
					}
					if typ == "webhook" {
						msgs := rc.Messages(t)
						if len(msgs) != 1 || len(msgs[0].Alerts) != 1 || msgs[0].Alerts[0].Labels["alertname"] != alertname ||
							msgs[0].Alerts[0].Status != "firing" {
							return fmt.Errorf("webhook messages %+v", msgs)
						}
						return nil
					}
					var msg struct {
						Text string `json:"text"`
					}
					if err := json.Unmarshal(reqs[0].Body, &msg); err != nil || !strings.Contains(msg.Text, "[FIRING] "+alertname) {
						return fmt.Errorf("slack message %s (%v)", reqs[0].Body, err)
					}
					return nil
				}
			}
			n, err := f(notifytest.Config("n-"+typ, typ, url), alerting.NotifierOptions{Logger: zerolog.Nop()})
			if err != nil || n == nil {
				t.Fatalf("%s: %v, %v", typ, n, err)
			}
			if n.Name() != "n-"+typ {
				t.Errorf("name %q", n.Name())
			}
			if err := n.Send(t.Context(), []alerting.Notification{fire}); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := arrived(); err != nil {
				t.Error(err)
			}
		})
	}
}
