package kinds_test

import (
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe/browser"
)

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Every check type of the config reference has a prober; the browser only when asked.
func TestProbers(t *testing.T) {
	if got := keys(kinds.Probers(zerolog.Nop(), &browser.Options{})); !slices.Equal(got, []string{"browser", "dns", "http", "tcp"}) {
		t.Errorf("with a browser: %v", got)
	}
	if got := keys(kinds.Probers(zerolog.Nop(), nil)); !slices.Equal(got, []string{"dns", "http", "tcp"}) {
		t.Errorf("without a browser: %v", got)
	}
}

// Every notifier type has a factory that builds a working notifier.
func TestNotifiers(t *testing.T) {
	fs := kinds.Notifiers()
	if got := keys(fs); !slices.Equal(got, []string{"alertmanager", "slack", "webhook"}) {
		t.Fatalf("notifier types %v", got)
	}
	for typ, f := range fs {
		n, err := f(notifytest.Config("n-"+typ, typ, "http://127.0.0.1:9/"), alerting.NotifierOptions{Logger: zerolog.Nop()})
		if err != nil || n == nil {
			t.Errorf("%s: %v, %v", typ, n, err)
		}
	}
}
