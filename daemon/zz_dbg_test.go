package daemon_test

import (
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/stats"
)

func dumpSlowdown(t *testing.T, r *running) {
	for _, tg := range r.d.Scheduler().Targets() {
		v, ok := r.d.Stats().NodeSlowdownOver(tg.Key, 12*time.Second)
		ws, _ := r.d.Stats().Window(stats.Key{Target: tg.Key}, 12*time.Second)
		t.Logf("%s slowdown=%v %v %+v", tg.Key, v, ok, ws)
	}
}
