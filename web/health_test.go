package web_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/web"
)

// healthSource adds measurement health and node verdicts to fixed data.
type healthSource struct {
	*fixedSource
	m     web.MeasurementStatus
	nodes []web.NodeStatus
}

func (h *healthSource) Measurement(context.Context) web.MeasurementStatus { return h.m }
func (h *healthSource) Nodes(context.Context) []web.NodeStatus            { return h.nodes }

// TestNodeVerdictsAndMeasurementHealth: with the detector's verdicts the
// page lists every node (a degraded one with its evidence, one without
// enough data said so, not as a number), frames the degraded node's cells
// instead of a noisy p90 ratio, warns when the daemon's own measurements
// are degraded, and the checks API carries the same.
func TestNodeVerdictsAndMeasurementHealth(t *testing.T) {
	src := &healthSource{fixedSource: incident(),
		m: web.MeasurementStatus{Degraded: true, LagSeconds: 0.14, ThresholdSeconds: 0.1},
		nodes: []web.NodeStatus{
			{Node: "lb1", Address: "127.0.0.11", State: web.NodeOK, SlowShare: fp(0.004), SiblingSlowShare: fp(0.003), Evidence: fp(0.1)},
			{Node: "lb2", Address: "127.0.0.12", State: web.NodeDegraded, SlowShare: fp(0.12), SiblingSlowShare: fp(0.003),
				Evidence: fp(9.5), P90: fp(1.51), SiblingP90: fp(0.041), Affected: []string{"shop-home via direct"}, Since: t0.Add(50 * time.Minute)},
			{Node: "lb3", Address: "127.0.0.13", State: web.NodeNotEnoughData},
		}}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s := web.New(web.Options{Logger: log, Gatherer: prometheus.NewRegistry()})
	st, err := web.NewStatus(web.StatusOptions{Source: src, Logger: log, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	st.Register(s)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	a := &apiEnv{srv: srv}

	code, _, body := a.get(t, "/")
	page := string(body)
	if code != 200 {
		t.Fatalf("status page: %d", code)
	}
	for _, want := range []string{
		"own measurements are degraded", "up to 140ms late",
		"Load-balancer nodes", `<tr class="node degraded">`, "DEGRADED", "12% of runs slow or failed, 0.3% on its siblings",
		"p90 1.51s vs 41.0ms", "in shop-home</td>", "10m ago",
		`<tr class="node not_enough_data">`, "not enough data",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// lb3's p90 ratio of 4.2 no longer frames it: the detector has the say.
	if class, b := cell(t, page, "shop-home/direct/lb3"); strings.Contains(class, "outlier") {
		t.Errorf("lb3 framed by its p90 ratio although the detector has no verdict: %q\n%s", class, b)
	}
	if class, b := cell(t, page, "shop-home/alt-source/lb2"); !strings.Contains(class, "outlier") || !strings.Contains(b, "node degraded") {
		t.Errorf("degraded lb2 not framed: %q\n%s", class, b)
	}

	code, _, body = a.get(t, "/api/v1/checks")
	var doc struct {
		Data struct {
			Measurement web.MeasurementStatus `json:"measurement"`
			Nodes       []web.NodeStatus      `json:"nodes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); code != 200 || err != nil {
		t.Fatalf("/api/v1/checks: %d %v", code, err)
	}
	if !doc.Data.Measurement.Degraded || doc.Data.Measurement.LagSeconds != 0.14 {
		t.Errorf("measurement %+v", doc.Data.Measurement)
	}
	if len(doc.Data.Nodes) != 3 || doc.Data.Nodes[1].State != "degraded" || doc.Data.Nodes[2].State != "not_enough_data" || doc.Data.Nodes[2].SlowShare != nil {
		t.Errorf("nodes %+v", doc.Data.Nodes)
	}
}
