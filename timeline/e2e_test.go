package timeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/timeline"
)

// TestDaemonRecordsNodeOutage runs a daemon with storage against the demo
// shop: refusing connections on lb2 makes a target_down event for lb2 (and
// only lb2) with the error, clearing the fault a target_up, and both show in
// the Markdown timeline from the API and from a read-only store.
func TestDaemonRecordsNodeOutage(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	shop, err := demo.Start(t.Context(), demo.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shop.Close() })

	cfgFile := filepath.Join(t.TempDir(), "vantage.yaml")
	cfg := fmt.Sprintf(`global:
  interval: 1s
  timeout: 900ms
  location: test
  down_after: 2
  up_after: 2
paths:
  - name: direct
    resolver: %s
    tls: {ca_file: %q}
checks:
  - name: shop-home
    type: http
    url: %s
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}, {name: lb2, address: 127.0.0.12}, {name: lb3, address: 127.0.0.13}]}
    expect: {status: [200]}
`, shop.DNSAddr(), shop.CAFile(), shop.URL(demo.WWWHost, "/"))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	d, err := daemon.New(daemon.Options{
		ConfigFile: cfgFile, StoragePath: dataDir, Retention: 24 * time.Hour, Logger: log,
		Kinds: kinds.Registry(), Probers: kinds.Probers(log, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, l) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("daemon did not stop")
		}
	}
	t.Cleanup(stop)
	start := time.Now().Add(-time.Second)

	events := func(kind storage.Kind) []storage.Event {
		evs, err := d.Store().Events(t.Context(), start, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		var out []storage.Event
		for _, e := range evs {
			if e.Kind == kind {
				out = append(out, e)
			}
		}
		return out
	}
	// Only lb2 is made bad; a healthy node may still time out twice in a
	// row on a loaded machine, which is not what this test is about.
	lb2Events := func(kind storage.Kind) []storage.Event {
		var out []storage.Event
		for _, e := range events(kind) {
			if e.Node == "lb2" {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				evs, _ := d.Store().Events(t.Context(), start, time.Now())
				t.Fatalf("timed out waiting for %s; events: %+v", what, evs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Healthy first: runs are stored for every node.
	waitFor("a run per node", func() bool {
		for _, n := range []string{"lb1", "lb2", "lb3"} {
			if runs, _ := d.Store().RecentRuns(t.Context(), "shop-home/direct/"+n, 1); len(runs) == 0 {
				return false
			}
		}
		return true
	})
	if len(events(storage.DaemonStart)) != 1 {
		t.Fatal("no daemon_start event")
	}

	setFault := func(spec string) {
		target, f, err := demo.ParseFault(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := shop.SetFault(target, f); err != nil {
			t.Fatal(err)
		}
	}
	setFault("lb2:refuse")
	waitFor("target_down of lb2", func() bool { return len(lb2Events(storage.TargetDown)) > 0 })
	down := lb2Events(storage.TargetDown)[0]
	if down.Node != "lb2" || down.Check != "shop-home" || down.Path != "direct" || down.Detail == "" || down.RunID == 0 {
		t.Fatalf("down event: %+v", down)
	}
	run, err := d.Store().Run(t.Context(), down.RunID)
	if err != nil || run.Result == "success" || run.Node != "lb2" {
		t.Fatalf("the down event's run: %+v %v", run, err)
	}
	if f, err := d.Store().LatestFailedRun(t.Context(), "shop-home/direct/lb2"); err != nil || f.Result == "success" {
		t.Fatalf("latest failed run: %+v %v", f, err)
	}

	setFault("lb2:clear")
	waitFor("target_up of lb2", func() bool { return len(lb2Events(storage.TargetUp)) > 0 })
	up := lb2Events(storage.TargetUp)[0]
	if up.Node != "lb2" || !strings.HasPrefix(up.Detail, "down for ") || up.Time.Before(down.Time) {
		t.Fatalf("up event: %+v", up)
	}
	if n := len(lb2Events(storage.TargetDown)); n != 1 {
		t.Fatalf("%d down events of lb2, want one for its one outage", n)
	}

	// The run detail over the API.
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/runs/%d", base, down.RunID))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"node": "lb2"`)) || !bytes.Contains(body, []byte(`"steps": [`)) {
		t.Fatalf("run API: %d %s", resp.StatusCode, body)
	}

	// The Markdown timeline over the API: no alert rule is configured, so
	// the outage never paged and shows with all=true only.
	resp, err = http.Get(base + "/api/v1/timeline?since=5m&format=markdown&timezone=UTC&all=true")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	md := string(body)
	for _, want := range []string{"| DOWN | shop-home/direct/lb2 |", "| UP | shop-home/direct/lb2 | down for ", "vantage started"} {
		if !strings.Contains(md, want) {
			t.Errorf("API markdown lacks %q:\n%s", want, md)
		}
	}

	resp, err = http.Get(base + "/api/v1/timeline?since=5m&format=markdown&timezone=UTC")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if md := string(body); !strings.Contains(md, "No incidents: no alert fired") || strings.Contains(md, "| DOWN |") {
		t.Errorf("default markdown shows the outage that never paged:\n%s", md)
	}

	// After shutdown, `vantage timeline` reads the same from the file.
	stop()
	st, err := storage.Open(dataDir, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(t.Context(), start, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := timeline.Markdown(&b, evs, start, time.Now(), timeline.Options{Location: time.UTC, All: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"| DOWN | shop-home/direct/lb2 |", "| UP | shop-home/direct/lb2 |", "| vantage stopped |"} {
		if !strings.Contains(out, want) {
			t.Errorf("stored timeline lacks %q:\n%s", want, out)
		}
	}
	t.Logf("timeline:\n%s", out)
}
