package daemon_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/web"
)

// TestStatusFromRealParts runs the daemon against the shop with one node
// refusing and reads /api/v1/checks, /api/v1/alerts, / and the run page:
// the status source is the scheduler's hysteresis, the statistics, the
// alert engine and storage together.
func TestStatusFromRealParts(t *testing.T) {
	shop := startShop(t)
	cfg := shopConfig(shop, time.Second, 900*time.Millisecond, shopHome(shop, "home")+`
alerts:
  - name: HomeFailing
    when: success_ratio < 0.8
    window: 1m
    for: 1s
    annotations: {summary: "token ${VANTAGE_STATUS_SECRET} {{ .node }}"}
`)
	secret := "st4tus-s3cret"
	r := startDaemon(t, daemon.Options{
		ConfigFile: writeConfig(t, strings.Replace(cfg, "  location: test\n", "  location: test\n  quantile_windows: [1m]\n", 1)), StoragePath: t.TempDir(), EvalInterval: 200 * time.Millisecond,
		Getenv: func(k string) (string, bool) {
			if k == "VANTAGE_STATUS_SECRET" {
				return secret, true
			}
			return "", false
		},
	})
	setFault(t, shop, "lb2:refuse")
	bad := "home/direct/" + shopNodes[1]

	var checks []web.CheckStatus
	var lb2 web.CheckStatus
	// Each target's first run can come late on a loaded machine (and a
	// healthy run can time out there): wait for the state wanted of every
	// target at once.
	testenv.Eventually(t, time.Minute, "lb2 DOWN with a stored failed run, every other target UP", func() error {
		code, body := r.do(t, "GET", "/api/v1/checks", nil)
		var doc struct {
			Data struct{ Checks []web.CheckStatus }
		}
		if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
			return fmt.Errorf("/api/v1/checks: %d %v", code, err)
		}
		checks = doc.Data.Checks
		lb2 = web.CheckStatus{}
		var notYet []string
		for _, c := range checks {
			switch {
			case c.Target == bad:
				lb2 = c
				if c.State != web.StateDown || c.LastFailedRunID == 0 {
					notYet = append(notYet, fmt.Sprintf("%s: %s", c.Target, c.State))
				}
			case c.Node == shopNodes[1]:
				// lb2 on the other path
			case c.State != web.StateUp || c.LastResult != "success" || len(c.Windows) != 1 || c.Windows[0].P90 == nil:
				notYet = append(notYet, fmt.Sprintf("%s: %s %s", c.Target, c.State, c.LastResult))
			}
		}
		if lb2.Target != bad || len(checks) != 6 {
			notYet = append(notYet, fmt.Sprintf("%d targets, lb2 %q", len(checks), lb2.Target))
		}
		if len(notYet) > 0 {
			return fmt.Errorf("%v", notYet)
		}
		return nil
	})
	if len(checks) != 6 {
		t.Errorf("%d targets, want 6 (3 nodes × 2 paths)", len(checks))
	}
	for _, c := range checks {
		if c.Node == shopNodes[1] {
			continue // lb2, on either path
		}
		if c.Windows[0].Window.String() != "1m" {
			t.Errorf("%s: %+v", c.Target, c)
		}
		if c.Labels["check"] != "home" || c.Labels["location"] != "test" || c.Type != "http" {
			t.Errorf("%s labels: %v", c.Target, c.Labels)
		}
	}
	if lb2.LastResult == "success" || lb2.LastReason == "" || lb2.Windows[0].P50 != nil || *lb2.Windows[0].SuccessRatio != 0 {
		t.Errorf("lb2: %+v", lb2)
	}
	code, body := r.do(t, "GET", fmt.Sprintf("/api/v1/runs/%d", lb2.LastFailedRunID), nil)
	if code != 200 || !strings.Contains(body, `"target": "`+bad+`"`) {
		t.Fatalf("linked run: %d %s", code, body)
	}
	// The healthy targets' successful runs cost no database row: they are
	// kept in memory only (ID 0), while lb2's failures are stored.
	for _, c := range checks {
		runs, err := r.d.Store().RecentRuns(t.Context(), c.Target, 100)
		if err != nil || len(runs) == 0 {
			t.Fatalf("%s: recent runs %v", c.Target, err)
		}
		stored := 0
		for _, run := range runs {
			if run.ID != 0 {
				stored++
			}
		}
		// lb2 may have succeeded before the fault; its failures are stored.
		if lb := c.Node == shopNodes[1]; (lb && stored == 0) || (!lb && stored != 0) {
			t.Errorf("%s: %d of %d recent runs stored", c.Target, stored, len(runs))
		}
	}

	waitStatus(t, time.Minute, "the alert firing for lb2", func() bool {
		_, body := r.do(t, "GET", "/api/v1/alerts", nil)
		var doc struct {
			Data struct{ Alerts []web.AlertStatus }
		}
		if json.Unmarshal([]byte(body), &doc) != nil {
			return false
		}
		for _, a := range doc.Data.Alerts {
			if a.Name == "HomeFailing" && a.Labels["node"] == shopNodes[1] && a.State == "firing" {
				return a.FiredCount == 1 && a.Value != nil && *a.Value < 0.8 && a.ValueText != "" && !a.FiredAt.IsZero()
			}
		}
		return false
	})
	_, body = r.do(t, "GET", "/api/v1/alerts", nil)
	if strings.Contains(body, secret) || !strings.Contains(body, `token \u003csecret\u003e`) {
		t.Errorf("alerts API leaks the secret or lost the annotation: %s", body)
	}

	code, page := r.do(t, "GET", "/", nil)
	if code != 200 {
		t.Fatalf("/: %d", code)
	}
	for _, want := range []string{
		`<td class="cell down outlier" data-target="` + bad + `" data-state="down">`,
		"HomeFailing", "target down", "vantage · test",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// lb2's cell links its latest failed run: the one the API named, or a
	// newer one stored since (lb2 keeps failing while the test reads).
	linked := false
	for _, m := range regexp.MustCompile(`href="/runs/(\d+)"`).FindAllStringSubmatch(page, -1) {
		if id, _ := strconv.ParseInt(m[1], 10, 64); id >= lb2.LastFailedRunID {
			linked = true
		}
	}
	if !linked {
		t.Errorf("status page links no failed run of lb2 as new as %d", lb2.LastFailedRunID)
	}
	if strings.Contains(page, secret) {
		t.Error("status page leaks the secret")
	}
	code, runPage := r.do(t, "GET", fmt.Sprintf("/runs/%d", lb2.LastFailedRunID), nil)
	if code != 200 || !strings.Contains(runPage, `class="error-text"`) || !strings.Contains(runPage, shopNodes[1]) {
		t.Errorf("run page: %d %.500s", code, runPage)
	}
}

func waitStatus(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
