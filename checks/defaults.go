package checks

import (
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Defaults applied at load time, so consumers of a loaded Config never need
// to know them. Treat these as constants: the loader copies them (including
// their slices and pointers) before use.
var (
	DefaultGlobal = Global{
		Interval:           model.Duration(30 * time.Second),
		Timeout:            model.Duration(10 * time.Second),
		DownAfter:          2,
		UpAfter:            2,
		QuantileWindows:    []model.Duration{model.Duration(5 * time.Minute), model.Duration(time.Hour)},
		MaxDomainsPerCheck: 50,
		FlapWindow:         model.Duration(time.Hour),
		NodeDetection:      DefaultNodeDetection,
		Metrics:            DefaultMetricsDetail,
	}

	// DefaultMetricsDetail exports every series the README's metrics table lists.
	DefaultMetricsDetail = MetricsDetail{Histograms: HistogramsClassicAndNative, HTTPPhases: true}

	// DefaultNodeDetection: a run counts as slow when it is at least 100ms
	// and 1.5x slower than the siblings' p90; at least 3 of them, at most
	// one false page per node per week, and the siblings' usual share of slow
	// runs taken over the last hour.
	DefaultNodeDetection = NodeDetection{
		MinExcess:         model.Duration(100 * time.Millisecond),
		MinRatio:          1.5,
		FalsePagesPerWeek: 1,
		MinSlowRuns:       3,
		Baseline:          model.Duration(time.Hour),
	}

	DefaultNotifier = Notifier{
		SendResolved:   boolPtr(true),
		RepeatInterval: durationPtr(4 * time.Hour),
		ResendInterval: model.Duration(time.Minute),
		MaxAge:         model.Duration(6 * time.Hour),
		Timeout:        model.Duration(10 * time.Second),
		HTTPConfig:     config.DefaultHTTPClientConfig,
	}

	// DefaultAlert's Window is filled at load with the shortest
	// global.quantile_windows entry.
	DefaultAlert = Alert{
		By:       []string{"check", "path", "node"},
		Severity: "warning",
	}
)

// DefaultPathName is the implicit path added when a config has no paths.
const DefaultPathName = "direct"

func boolPtr(b bool) *bool { return &b }

func durationPtr(d time.Duration) *model.Duration {
	m := model.Duration(d)
	return &m
}

func defaultGlobal() Global {
	g := DefaultGlobal
	g.QuantileWindows = append([]model.Duration(nil), DefaultGlobal.QuantileWindows...)
	return g
}

func defaultNotifier() Notifier {
	n := DefaultNotifier
	if DefaultNotifier.SendResolved != nil {
		n.SendResolved = boolPtr(*DefaultNotifier.SendResolved)
	}
	if DefaultNotifier.RepeatInterval != nil {
		d := *DefaultNotifier.RepeatInterval
		n.RepeatInterval = &d
	}
	return n
}

func defaultAlert() Alert {
	a := DefaultAlert
	a.By = append([]string(nil), DefaultAlert.By...)
	return a
}
