package alerting_test

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/storage"
)

// TestQueueWriteErrorIsCountedAndLogged: a delivery whose queue row cannot
// be marked sent (here another process deleted it while the receiver
// answered) is counted in vantage_notification_queue_errors_total, not
// discarded silently.
func TestQueueWriteErrorIsCountedAndLogged(t *testing.T) {
	f := newFixture(t)
	var once sync.Once
	rcv := notifytest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, storage.FileName)+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			if _, err := db.Exec("DELETE FROM notifications"); err != nil {
				t.Error(err)
			}
		})
	})
	f.open(cfgFor(rcv.URL))
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 5
	f.step(50 * time.Second)
	if len(rcv.Requests()) == 0 {
		t.Fatal("the firing notification was never sent")
	}
	want := `
# HELP vantage_notification_queue_errors_total Failed writes to the durable notification queue after a delivery attempt (the notification may be sent again or held after a restart).
# TYPE vantage_notification_queue_errors_total counter
vantage_notification_queue_errors_total{notifier="room"} 1
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "vantage_notification_queue_errors_total"); err != nil {
		t.Error(err)
	}
}
