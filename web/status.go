package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/storage"
)

//go:embed assets
var assetFS embed.FS

// The target states of the status page and /api/v1/checks.
const (
	StateUp      = "up"      // UP after the up_after hysteresis
	StateDown    = "down"    // DOWN after the down_after hysteresis
	StateUnknown = "unknown" // no run finished yet
)

// CheckStatus is one target as /api/v1/checks and the status page show it
// (docs/api.md).
type CheckStatus struct {
	Target string `json:"target"`
	Check  string `json:"check"`
	Type   string `json:"type"`
	Path   string `json:"path"`
	Node   string `json:"node"`
	// NodeAddress is the node's IP (the node label is its name where one
	// is configured); empty when the check has no nodes.
	NodeAddress string            `json:"node_address"`
	Labels      map[string]string `json:"labels"`
	// State is up, down (after the hysteresis) or unknown (no run yet).
	State      string    `json:"state"`
	LastResult string    `json:"last_result,omitempty"`
	LastReason string    `json:"last_reason,omitempty"`
	LastRunAt  time.Time `json:"last_run_at,omitzero"`
	// LastDuration is the last run's duration in seconds.
	LastDuration float64 `json:"last_duration_seconds,omitempty"`
	// LastFailedRunID is the newest stored run that did not succeed; set
	// while the target is down or its last run failed (0: none known).
	LastFailedRunID int64 `json:"last_failed_run_id,omitempty"`
	// Windows are the figures per quantile window, shortest first.
	Windows []WindowStatus `json:"windows"`
	// NodeSlowdown is absent when undefined (no node, fewer than two
	// other nodes reporting).
	NodeSlowdown *float64 `json:"node_slowdown,omitempty"`

	// Pages: the check's kind loads pages that report their requests by
	// domain (checks.Traits), so the page shows the domain table.
	Pages bool `json:"-"`
}

// WindowStatus is one series' figures over one sliding window. Quantiles
// are of successful runs; a nil figure had no data in the window.
type WindowStatus struct {
	Window       model.Duration `json:"window"`
	Runs         int            `json:"runs"`
	SuccessRatio *float64       `json:"success_ratio"`
	P50          *float64       `json:"p50_seconds"`
	P90          *float64       `json:"p90_seconds"`
	P99          *float64       `json:"p99_seconds"`
}

// DomainStatus is one browser domain series of one target over the
// shortest window.
type DomainStatus struct {
	Target string
	Check  string
	Path   string
	Node   string
	Domain string
	Window WindowStatus
}

// AlertStatus is one alert instance (docs/api.md).
type AlertStatus struct {
	Name        string            `json:"name"`
	Key         string            `json:"key"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// State is pending, firing or resolved (kept for a while after).
	State string `json:"state"`
	// Value is the measure's last value; absent when not a number.
	Value *float64 `json:"value,omitempty"`
	// ValueText is Value as people read it ("1.8s", "25%").
	ValueText    string    `json:"value_text,omitempty"`
	Measure      string    `json:"measure"`
	ActiveAt     time.Time `json:"active_at,omitzero"`
	FiredAt      time.Time `json:"fired_at,omitzero"`
	ResolvedAt   time.Time `json:"resolved_at,omitzero"`
	FiredCount   int       `json:"fired_count"`
	FirstFiredAt time.Time `json:"first_fired_at,omitzero"`
	Flapping     bool      `json:"flapping"`
	// InhibitedBy is the key of the node alert this alert is folded into:
	// the built-in notifiers page that one instead.
	InhibitedBy string `json:"inhibited_by,omitempty"`
}

// StatusSource feeds the status page, /api/v1/checks and /api/v1/alerts.
// The daemon implements it from the scheduler, statistics, alerting and
// storage; tests build one from fixed data.
type StatusSource interface {
	// Checks lists every target, sorted by target key.
	Checks(ctx context.Context) []CheckStatus
	// Domains lists browser domain series (every target's).
	Domains(ctx context.Context) []DomainStatus
	// Alerts lists the live alert instances.
	Alerts(ctx context.Context) []AlertStatus
	// Events returns the n latest timeline events, oldest first; nil
	// without storage.
	Events(ctx context.Context, n int) ([]storage.Event, error)
}

// StatusOptions wire the status page and its JSON API.
type StatusOptions struct {
	Source StatusSource
	// Store serves run detail pages; nil: no run pages, cells do not link.
	Store  *storage.Store
	Logger zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Location is the zone times are shown in; nil means UTC.
	Location *time.Location
	// Redact scrubs secrets from text on the way out; nil means none.
	Redact func(string) string
	// Title heads the page ("vantage" by default).
	Title string
	// Refresh is the page's refresh period (default 10s).
	Refresh time.Duration
	// Events is how many timeline events the page shows (default 25).
	Events int
}

// Status serves GET /, GET /runs/{id}, the page's assets and
// /api/v1/checks and /api/v1/alerts.
type Status struct {
	o      StatusOptions
	page   *template.Template
	run    *template.Template
	assets http.Handler
}

// NewStatus builds the status page handlers.
func NewStatus(o StatusOptions) (*Status, error) {
	if o.Source == nil {
		return nil, errors.New("status page: no source")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.Title == "" {
		o.Title = "vantage"
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	if o.Events <= 0 {
		o.Events = 25
	}
	funcs := template.FuncMap{}
	page, err := template.New("status.html").Funcs(funcs).ParseFS(assetFS, "assets/status.html", "assets/layout.html")
	if err != nil {
		return nil, err
	}
	run, err := template.New("run.html").Funcs(funcs).ParseFS(assetFS, "assets/run.html", "assets/layout.html")
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assetFS, "assets/static")
	if err != nil {
		return nil, err
	}
	return &Status{o: o, page: page, run: run, assets: http.StripPrefix("/assets/", http.FileServerFS(static))}, nil
}

// Register adds the page and API routes to s.
func (st *Status) Register(s *Server) {
	s.Handle("GET /{$}", http.HandlerFunc(st.servePage))
	s.Handle("GET /runs/{id}", http.HandlerFunc(st.serveRun))
	s.Handle("GET /assets/", http.HandlerFunc(st.serveAsset))
	s.Handle("GET /api/v1/checks", http.HandlerFunc(st.apiChecks))
	s.Handle("GET /api/v1/alerts", http.HandlerFunc(st.apiAlerts))
}

// securityHeaders keep the page to its own assets: no inline script, no
// framing, no referrer leaking target names.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func (st *Status) serveAsset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	st.assets.ServeHTTP(w, r)
}

// Render writes the status page (the whole document, or with fragment
// only the live part that the page's script swaps in).
func (st *Status) Render(ctx context.Context, w *bytes.Buffer, fragment bool) error {
	v := st.build(ctx)
	name := "status.html"
	if fragment {
		name = "live"
	}
	return st.page.ExecuteTemplate(w, name, v)
}

func (st *Status) servePage(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	fragment := r.URL.Query().Get("fragment") == "1"
	if err := st.Render(r.Context(), &b, fragment); err != nil {
		st.o.Logger.Error().Err(err).Msg("rendering the status page")
		http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// --- the status page's view model ---

type pageView struct {
	Title     string
	Updated   string
	UpdatedAt string // RFC 3339
	Refresh   int    // seconds
	Window    string
	Summary   summary
	// Incidents is what is wrong now, worst first; MoreIncidents fold
	// away below the first few. AllClear says so when nothing is.
	Incidents     []incidentView
	MoreIncidents []incidentView
	AllClear      string
	// Alerts are the firing ones; Pending and Resolved fold away.
	Alerts   []alertView
	Pending  []alertView
	Resolved []alertView
	// ShowDomains is set when a browser check loads third-party domains.
	ShowDomains bool
	Domains     []domainView
	Checks      []checkView
	Events      []eventView
	HasEvents   bool
	// Measurement is set while the daemon's own measurements are degraded.
	Measurement *measurementView
	// NodeVerdicts are the node detector's, when a rule uses it.
	NodeVerdicts []nodeVerdictView
}

type summary struct {
	Targets, Up, Degraded, Down, Failing, Unknown, Outliers int
}

type checkView struct {
	Name   string
	Type   string
	Labels string
	Class  string // bad | degraded | "" (the card's frame; bad first)
	Nodes  []nodeView
	Rows   []rowView
	ID     string
}

// nodeView is a grid column: the node label and, where that is a name,
// the address behind it.
type nodeView struct {
	Name    string
	Address string
}

type rowView struct {
	Path  string
	Cells []cellView
}

type cellView struct {
	Present   bool
	Target    string
	State     string // up | down | failing | unknown (CSS class)
	StateText string
	P50       string
	P90       string
	P99       string
	OK        string
	Slow      string
	NoLatency bool   // no successful run in the window: no quantiles
	Outlier   string // why the cell stands out, or ""
	Reason    string
	Link      string
	Label     string // the cell's accessible name
}

type alertView struct {
	Name, State, Severity, Where, Value, Since, Summary string
	Class                                               string // firing | folded | pending | resolved
	FiredCount                                          int
	Flapping                                            bool
	FoldedInto                                          string // the node alert's rule, when folded
}

type domainView struct {
	checks   []string // the checks that load it
	Domain   string
	OK       string
	Failed   int
	Runs     int
	Where    string
	Targets  int
	P90      string
	Link     string
	LinkText string
}

type eventView struct {
	Time, TimeISO, Kind, Class, Where, Detail, Link string
}

// cellState folds hysteresis and the last run into the four page states.
func cellState(c *CheckStatus) string {
	switch {
	case c.State == StateDown:
		return "down"
	case c.State == StateUnknown || c.LastResult == "":
		return "unknown"
	case c.LastResult != "success":
		return "failing"
	}
	return "up"
}

var stateText = map[string]string{"up": "UP", "degraded": "DEGRADED", "down": "DOWN", "failing": "FAILING", "unknown": "NO DATA"}

// nodeMark is a node the detector finds degraded: why, and the checks and
// paths ("check via path") where its runs are worse than its siblings'.
type nodeMark struct {
	why      string
	affected map[string]bool
}

// degradedCell says whether an up cell of a degraded node shows the fault:
// the detector pools a node's checks and paths, and names those that show
// it (none named: all of them).
func (m *nodeMark) degradedCell(check, path string) bool {
	if m == nil {
		return false
	}
	if len(m.affected) == 0 {
		return true
	}
	name := check
	if path != "" {
		name += " via " + path
	}
	return m.affected[name]
}

// incidentEvents is how many of the latest events date the incidents (the
// page lists fewer).
const incidentEvents = 200

func (st *Status) build(ctx context.Context) *pageView {
	now := st.o.Now().In(st.o.Location)
	v := &pageView{
		Title: st.o.Title, Updated: now.Format("15:04:05 MST"), UpdatedAt: now.Format(time.RFC3339),
		Refresh: int(st.o.Refresh / time.Second),
	}
	checks := st.o.Source.Checks(ctx)
	var nodes []NodeStatus
	if hs, ok := st.o.Source.(HealthSource); ok {
		nodes = hs.Nodes(ctx)
		v.Measurement = measurementOf(hs.Measurement(ctx))
	}
	marks := map[string]*nodeMark{}
	for _, n := range nodes {
		if n.State == NodeDegraded {
			// The evidence is on the node's line and in the node table; a
			// cell has no room for it.
			m := &nodeMark{why: "node degraded", affected: map[string]bool{}}
			for _, a := range n.Affected {
				m.affected[a] = true
			}
			marks[n.Node] = m
		}
	}
	var states map[string]string
	v.Checks, states = st.grid(checks, &v.Summary, marks, nodes != nil)
	v.NodeVerdicts = st.nodeViews(nodes, checks, states, now)
	if len(checks) > 0 && len(checks[0].Windows) > 0 {
		v.Window = checks[0].Windows[0].Window.String()
	}
	alerts := st.o.Source.Alerts(ctx)
	for _, a := range st.alertViews(alerts, now) {
		switch a.Class {
		case "pending":
			v.Pending = append(v.Pending, a)
		case "resolved":
			v.Resolved = append(v.Resolved, a)
		default:
			v.Alerts = append(v.Alerts, a)
		}
	}
	v.Domains = st.domainViews(st.o.Source.Domains(ctx), checks)
	for _, c := range checks {
		if c.Pages {
			v.ShowDomains = true
		}
	}
	v.ShowDomains = v.ShowDomains || len(v.Domains) > 0
	evs, err := st.o.Source.Events(ctx, max(st.o.Events, incidentEvents))
	if err != nil {
		st.o.Logger.Warn().Err(err).Msg("reading the latest events for the status page")
	}
	v.HasEvents = evs != nil || err != nil
	for i := len(evs) - 1; i >= 0 && len(v.Events) < st.o.Events; i-- {
		v.Events = append(v.Events, st.eventView(&evs[i], now))
	}
	inc := st.incidents(now, incidentInput{checks: checks, states: states, nodes: nodes, domains: v.Domains,
		alerts: alerts, events: evs, measured: v.Measurement != nil})
	if len(inc) > maxIncidents+1 {
		v.Incidents, v.MoreIncidents = inc[:maxIncidents], inc[maxIncidents:]
	} else {
		v.Incidents = inc
	}
	if len(inc) == 0 {
		v.AllClear = st.allClear(&v.Summary, len(v.Pending))
	}
	return v
}

// allClear is the page's first line when nothing is wrong.
func (st *Status) allClear(s *summary, pending int) string {
	if s.Targets == 0 {
		return "Nothing is probed yet."
	}
	msg := fmt.Sprintf("Nothing is wrong: %d of %d targets up", s.Up, s.Targets)
	if s.Unknown > 0 {
		msg += fmt.Sprintf(", %d without a finished run yet", s.Unknown)
	}
	if pending > 0 {
		msg += fmt.Sprintf("; %d %s pending, not paged", pending, plural(pending, "alert", "alerts"))
	}
	return msg + "."
}

// grid arranges targets per check: paths as rows, nodes as columns, so one
// bad node reads as a column and one bad path as a row.
// marks are the nodes the detector finds degraded; detector says whether
// it runs at all (else a node stands out by its slowdown). It also returns
// each target's page state.
func (st *Status) grid(list []CheckStatus, sum *summary, marks map[string]*nodeMark, detector bool) ([]checkView, map[string]string) {
	type acc struct {
		view  checkView
		paths []string
		nodes []string
		addrs map[string]string // node label -> address
		cells map[[2]string]*CheckStatus
	}
	byCheck := map[string]*acc{}
	var order []string
	for i := range list {
		c := &list[i]
		a := byCheck[c.Check]
		if a == nil {
			a = &acc{view: checkView{Name: c.Check, Type: c.Type, Labels: st.checkLabels(c)}, cells: map[[2]string]*CheckStatus{},
				addrs: map[string]string{}}
			byCheck[c.Check] = a
			order = append(order, c.Check)
		}
		if _, ok := a.cells[[2]string{c.Path, c.Node}]; !ok {
			if !contains(a.paths, c.Path) {
				a.paths = append(a.paths, c.Path)
			}
			if !contains(a.nodes, c.Node) {
				a.nodes = append(a.nodes, c.Node)
			}
			if c.NodeAddress != c.Node && a.addrs[c.Node] == "" {
				a.addrs[c.Node] = c.NodeAddress
			}
		}
		a.cells[[2]string{c.Path, c.Node}] = c
	}
	out := make([]checkView, 0, len(order))
	byTarget := make(map[string]string, len(list))
	for _, name := range order {
		a := byCheck[name]
		sort.Strings(a.paths)
		sort.Strings(a.nodes)
		cv := a.view
		cv.ID = "check-" + name
		for _, n := range a.nodes {
			nv := nodeView{Name: n, Address: a.addrs[n]}
			if n == "" {
				nv.Name = "(no node)"
			}
			cv.Nodes = append(cv.Nodes, nv)
		}
		states := map[[2]string]string{}
		for k, c := range a.cells {
			states[k] = cellState(c)
			if states[k] == "up" && c.Node != "" && marks[c.Node].degradedCell(c.Check, c.Path) {
				states[k] = "degraded"
			}
			byTarget[c.Target] = states[k]
		}
		for _, p := range a.paths {
			row := rowView{Path: p}
			for _, n := range a.nodes {
				c := a.cells[[2]string{p, n}]
				if c == nil {
					row.Cells = append(row.Cells, cellView{})
					continue
				}
				cellv := st.cellView(c, states[[2]string{p, n}])
				cellv.Outlier = outlier(c, cellv.State, p, n, a.paths, a.nodes, states, marks, detector)
				if cellv.Outlier != "" {
					sum.Outliers++
					cellv.Label += ", " + cellv.Outlier
				}
				switch cellv.State {
				case "up":
					sum.Up++
				case "degraded":
					sum.Degraded++
				case "down":
					sum.Down++
				case "failing":
					sum.Failing++
				default:
					sum.Unknown++
				}
				sum.Targets++
				switch {
				case cellv.State == "down" || cellv.State == "failing" || cellv.Outlier != "" && marks[n] == nil:
					cv.Class = "bad"
				case cellv.State == "degraded" || cellv.Outlier != "":
					// Only a degraded node's cells: framed in its colour.
					if cv.Class == "" {
						cv.Class = "degraded"
					}
				}
				row.Cells = append(row.Cells, cellv)
			}
			cv.Rows = append(cv.Rows, row)
		}
		out = append(out, cv)
	}
	// Checks with trouble first: the page is read during an incident.
	rank := map[string]int{"bad": 0, "degraded": 1, "": 2}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Class] < rank[out[j].Class] })
	return out, byTarget
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// outlier says why a cell stands out against its siblings (the other nodes
// on its path, the same node on other paths), or "".
// A node stands out by the node detector's verdict where a rule uses it
// (its cells that show the fault have their own state instead). Without the
// detector a p90 over 3× its siblings' stands out only when it is also
// slower by minExcess: at a few milliseconds, 3× is noise.
func outlier(c *CheckStatus, state, path, node string, paths, nodes []string, states map[[2]string]string, marks map[string]*nodeMark, detector bool) string {
	if m := marks[node]; m != nil && node != "" && state != "degraded" {
		return m.why
	}
	if !detector && c.NodeSlowdown != nil && *c.NodeSlowdown > 3 && len(c.Windows) > 0 && c.Windows[0].P90 != nil {
		p90 := *c.Windows[0].P90
		if p90 - p90 / *c.NodeSlowdown >= minExcess {
			return fmt.Sprintf("%.1f× slower than the other nodes", *c.NodeSlowdown)
		}
	}
	if state != "down" && state != "failing" {
		return ""
	}
	healthy := func(k [2]string) bool { return states[k] == "up" || states[k] == "degraded" }
	var rowOK, colOK bool
	for _, n := range nodes {
		if n != node && healthy([2]string{path, n}) {
			rowOK = true
		}
	}
	for _, p := range paths {
		if p != path && healthy([2]string{p, node}) {
			colOK = true
		}
	}
	switch {
	case rowOK && node != "":
		return "other nodes are up"
	case colOK:
		return "other paths are up"
	case rowOK:
		return "siblings are up"
	}
	return ""
}

// minExcess is the node detector's default min_excess: how much slower
// than its siblings a node must be before the page frames it by its p90
// ratio alone.
const minExcess = 0.1

func (st *Status) cellView(c *CheckStatus, state string) cellView {
	v := cellView{Present: true, Target: c.Target, State: state, StateText: stateText[state], P50: "–", P90: "–", P99: "–", OK: "–"}
	if len(c.Windows) > 0 {
		w := c.Windows[0]
		v.P50, v.P90, v.P99 = fmtSeconds(w.P50), fmtSeconds(w.P90), fmtSeconds(w.P99)
		v.NoLatency = w.P50 == nil && w.Runs > 0
		if w.SuccessRatio != nil {
			v.OK = fmtRatio(*w.SuccessRatio)
		}
	}
	if c.NodeSlowdown != nil {
		v.Slow = fmt.Sprintf("×%.1f", *c.NodeSlowdown)
	}
	if state != "up" && c.LastReason != "" {
		v.Reason = st.clean(c.LastReason)
	}
	if c.LastFailedRunID > 0 && st.o.Store != nil && (state == "down" || state == "failing") {
		v.Link = "/runs/" + strconv.FormatInt(c.LastFailedRunID, 10)
	}
	where := c.Path
	if c.Node != "" {
		where += ", node " + c.Node
	}
	v.Label = fmt.Sprintf("%s via %s: %s", c.Check, where, v.StateText)
	return v
}

func (st *Status) checkLabels(c *CheckStatus) string {
	// The check's own labels: everything but the fixed and global ones
	// would need the config; the route-like labels are what tell checks
	// apart, so show the non-structural ones.
	var parts []string
	for k, val := range c.Labels {
		switch k {
		case "check", "type", "path", "node", "location":
			continue
		}
		if val == "" {
			continue // a label another check sets
		}
		parts = append(parts, k+"="+st.o.Redact(val))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// clean strips URL credentials and secrets from text shown to people.
func (st *Status) clean(s string) string {
	return st.o.Redact(storage.StripURLCredentials(s))
}

// alertViews lists every alert instance: firing first (those folded into a
// node alert after the ones that page), then pending, then resolved.
func (st *Status) alertViews(list []AlertStatus, now time.Time) []alertView {
	rank := func(a *AlertStatus) int {
		switch {
		case a.State == "firing" && a.InhibitedBy == "":
			return 0
		case a.State == "firing":
			return 1
		case a.State == "pending":
			return 2
		}
		return 3
	}
	shown := append([]AlertStatus(nil), list...)
	sort.SliceStable(shown, func(i, j int) bool {
		if ri, rj := rank(&shown[i]), rank(&shown[j]); ri != rj {
			return ri < rj
		}
		return shown[i].Key < shown[j].Key
	})
	out := make([]alertView, 0, len(shown))
	for i := range shown {
		a := &shown[i]
		v := alertView{Name: a.Name, State: a.State, Class: a.State, Severity: a.Labels["severity"], FiredCount: a.FiredCount,
			Flapping: a.Flapping, Value: a.ValueText, Summary: st.clean(a.Annotations["summary"])}
		if a.InhibitedBy != "" {
			v.FoldedInto, _, _ = strings.Cut(a.InhibitedBy, "|")
			if a.State == "firing" {
				v.Class = "folded"
			}
		}
		if v.Class != "firing" && v.Class != "folded" && v.Class != "pending" {
			v.Class = "resolved"
		}
		v.Where = alertWhere(a, st.clean)
		since := a.ActiveAt
		switch a.State {
		case "firing":
			since = a.FiredAt
		case "resolved":
			since = a.ResolvedAt
		}
		if !since.IsZero() {
			v.Since = ago(now.Sub(since))
		}
		out = append(out, v)
	}
	return out
}

// domainViews lists third-party domains that failed in the shortest window,
// one row per domain across the targets that load it, worst first.
func (st *Status) domainViews(list []DomainStatus, checks []CheckStatus) []domainView {
	failedRun := map[string]int64{}
	for _, c := range checks {
		if c.LastFailedRunID > 0 {
			failedRun[c.Target] = c.LastFailedRunID
		}
	}
	type acc struct {
		runs, ok int
		where    []string
		checks   []string
		worstP90 float64
		link     int64
	}
	by := map[string]*acc{}
	for _, d := range list {
		w := d.Window
		if w.Runs == 0 || w.SuccessRatio == nil || *w.SuccessRatio >= 1 {
			continue
		}
		a := by[d.Domain]
		if a == nil {
			a = &acc{}
			by[d.Domain] = a
		}
		a.runs += w.Runs
		a.ok += int(math.Round(*w.SuccessRatio * float64(w.Runs)))
		where := d.Check + " via " + d.Path
		if d.Node != "" {
			where += " on " + d.Node
		}
		a.where = append(a.where, where)
		a.checks = appendNew(a.checks, d.Check)
		if w.P90 != nil && *w.P90 > a.worstP90 {
			a.worstP90 = *w.P90
		}
		if id := failedRun[d.Target]; id > a.link {
			a.link = id
		}
	}
	out := make([]domainView, 0, len(by))
	for dom, a := range by {
		v := domainView{Domain: dom, Runs: a.runs, Failed: a.runs - a.ok, Targets: len(a.where), P90: "–", checks: a.checks}
		v.OK = fmtRatio(float64(a.ok) / float64(a.runs))
		sort.Strings(a.where)
		if len(a.where) > 4 {
			v.Where = strings.Join(a.where[:4], ", ") + fmt.Sprintf(" and %d more", len(a.where)-4)
		} else {
			v.Where = strings.Join(a.where, ", ")
		}
		if a.worstP90 > 0 {
			p := a.worstP90
			v.P90 = fmtSeconds(&p)
		}
		if a.link > 0 && st.o.Store != nil {
			v.Link = "/runs/" + strconv.FormatInt(a.link, 10)
			v.LinkText = "run " + strconv.FormatInt(a.link, 10)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := float64(out[i].Failed)/float64(out[i].Runs), float64(out[j].Failed)/float64(out[j].Runs)
		if ri != rj {
			return ri > rj
		}
		return out[i].Domain < out[j].Domain
	})
	return out
}

var eventClass = map[storage.Kind]string{
	storage.TargetDown: "bad", storage.AlertFiring: "bad", storage.NotificationFailed: "bad",
	storage.NotificationDropped: "bad", storage.ConfigReloadFailed: "bad",
	storage.TargetUp: "good", storage.AlertResolved: "good",
	storage.AlertPending: "warn",
}

func (st *Status) eventView(e *storage.Event, now time.Time) eventView {
	t := e.Time.In(st.o.Location)
	layout := "15:04:05"
	if y1, m1, d1 := t.Date(); true {
		if y2, m2, d2 := now.Date(); y1 != y2 || m1 != m2 || d1 != d2 {
			layout = "Jan 2 15:04:05"
		}
	}
	v := eventView{Time: t.Format(layout), TimeISO: t.Format(time.RFC3339), Kind: strings.ReplaceAll(string(e.Kind), "_", " "),
		Class: eventClass[e.Kind], Detail: st.clean(e.Detail)}
	var where []string
	for _, p := range []struct{ k, v string }{{"", e.Alert}, {"", e.Check}, {"via ", e.Path}, {"node ", e.Node}, {"domain ", e.Domain}, {"notifier ", e.Notifier}} {
		if p.v != "" {
			where = append(where, p.k+p.v)
		}
	}
	v.Where = st.clean(strings.Join(where, " "))
	if e.RunID > 0 && st.o.Store != nil {
		v.Link = "/runs/" + strconv.FormatInt(e.RunID, 10)
	}
	return v
}

// --- formatting ---

func fmtSeconds(p *float64) string {
	if p == nil || math.IsNaN(*p) {
		return "–"
	}
	return fmtDur(*p)
}

// fmtDur renders a timing kept in seconds.
func fmtDur(s float64) string {
	return durfmt.Format(time.Duration(s*float64(time.Second)), durfmt.Measured)
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	if r >= 1 {
		return "100%"
	}
	// Never round a failure up to 100%.
	return strconv.FormatFloat(math.Floor(r*1000)/10, 'f', 1, 64) + "%"
}

func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

// --- the run detail page ---

type runView struct {
	Title      string
	ID         int64
	Check      string
	Path       string
	Node       string
	Start      string
	StartISO   string
	Duration   string
	Result     string
	Failed     bool
	Error      string
	Steps      []stepView
	Requests   []requestView
	Screenshot string
	ScreenAlt  string
	APIURL     string
	Artifacts  []ArtifactJSON
}

type stepView struct {
	Name, URL, Result, Status, Duration, Reason, Phases string
	Failed                                              bool
}

type requestView struct {
	Domain, Method, URL, Status, Result, Failure, Duration, Type string
	Failed                                                       bool
	// X and W place the bar on a 0..1000 scale of the waterfall.
	X, W int
}

func (st *Status) serveRun(w http.ResponseWriter, r *http.Request) {
	if st.o.Store == nil {
		http.Error(w, "run details need storage (--storage.path)", http.StatusNotFound)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "run id: want a positive integer", http.StatusBadRequest)
		return
	}
	run, err := st.o.Store.Run(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		http.Error(w, fmt.Sprintf("run %d not found (runs are kept per target up to a bound and for the retention period)", id), http.StatusNotFound)
		return
	}
	if err != nil {
		st.o.Logger.Error().Err(err).Int64("run", id).Msg("reading a run for its page")
		http.Error(w, "reading the run failed", http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := st.run.ExecuteTemplate(&b, "run.html", st.runView(&run)); err != nil {
		st.o.Logger.Error().Err(err).Msg("rendering a run page")
		http.Error(w, "rendering the run failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

func (st *Status) runView(run *storage.Run) *runView {
	start := run.Start.In(st.o.Location)
	v := &runView{
		Title: st.o.Title, ID: run.ID, Check: run.Check, Path: run.Path, Node: run.Node,
		Start: start.Format("2006-01-02 15:04:05.000 MST"), StartISO: start.Format(time.RFC3339Nano),
		Duration: fmtDur(run.Duration.Seconds()), Result: run.Result, Failed: run.Result != "success",
		Error:  st.clean(run.Reason),
		APIURL: "/api/v1/runs/" + strconv.FormatInt(run.ID, 10),
	}
	var steps []storage.Step
	if len(run.Steps) > 0 {
		_ = json.Unmarshal(run.Steps, &steps)
	}
	for _, s := range steps {
		sv := stepView{Name: st.clean(s.Name), URL: st.clean(s.URL), Result: s.Result, Duration: fmtDur(s.Duration),
			Reason: st.clean(s.Reason), Failed: s.Result != "success"}
		if s.StatusCode > 0 {
			sv.Status = strconv.Itoa(s.StatusCode)
		}
		if p := s.Phases; p != nil {
			var parts []string
			if p.DNS != nil {
				parts = append(parts, "DNS "+fmtDur(*p.DNS))
			}
			parts = append(parts, "connect "+fmtDur(p.Connect))
			if p.TLS != nil {
				parts = append(parts, "TLS "+fmtDur(*p.TLS))
			}
			parts = append(parts, "processing "+fmtDur(p.Processing), "transfer "+fmtDur(p.Transfer))
			sv.Phases = strings.Join(parts, " · ")
		}
		if n := s.Navigation; n != nil {
			nav := fmt.Sprintf("TTFB %s · DOMContentLoaded %s · load %s · LCP %s", fmtDur(n.TTFB), fmtDur(n.DOMContentLoaded), fmtDur(n.Load), fmtDur(n.LCP))
			if sv.Phases != "" {
				sv.Phases += " — "
			}
			sv.Phases += nav
		}
		v.Steps = append(v.Steps, sv)
	}
	var reqs []storage.Request
	if len(run.Requests) > 0 {
		_ = json.Unmarshal(run.Requests, &reqs)
	}
	v.Requests = waterfall(reqs, run, st.clean)
	if i := screenshotIndex(*run); i >= 0 {
		v.Screenshot = v.APIURL + "/screenshot.png"
		v.ScreenAlt = fmt.Sprintf("Screenshot of %s via %s at the end of failed run %d", run.Check, run.Path, run.ID)
		if run.Node != "" {
			v.ScreenAlt = fmt.Sprintf("Screenshot of %s via %s on node %s at the end of failed run %d", run.Check, run.Path, run.Node, run.ID)
		}
	}
	for i, f := range run.Artifacts {
		name := f
		if j := strings.LastIndexAny(name, `/\`); j >= 0 {
			name = name[j+1:]
		}
		v.Artifacts = append(v.Artifacts, ArtifactJSON{Name: name, URL: v.APIURL + "/artifacts/" + strconv.Itoa(i)})
	}
	return v
}

// waterfall places each request on a common time axis from the first
// request's start to the last one's end.
func waterfall(reqs []storage.Request, run *storage.Run, clean func(string) string) []requestView {
	if len(reqs) == 0 {
		return nil
	}
	t0 := reqs[0].Start
	end := t0
	for _, q := range reqs {
		if !q.Start.IsZero() && q.Start.Before(t0) {
			t0 = q.Start
		}
	}
	for _, q := range reqs {
		if e := q.Start.Add(time.Duration(q.Duration * float64(time.Second))); e.After(end) {
			end = e
		}
	}
	span := end.Sub(t0).Seconds()
	if span <= 0 {
		span = math.Max(run.Duration.Seconds(), 0.001)
	}
	out := make([]requestView, 0, len(reqs))
	for _, q := range reqs {
		rv := requestView{Domain: clean(q.Domain), Method: q.Method, URL: clean(q.URL), Result: q.Result,
			Failure: clean(q.Failure), Duration: fmtDur(q.Duration), Type: q.Type,
			Failed: q.Result != "" && q.Result != "ok"}
		if q.Status > 0 {
			rv.Status = strconv.Itoa(q.Status)
		}
		x := q.Start.Sub(t0).Seconds() / span
		rv.X = min(max(int(x*1000), 0), 995)
		rv.W = min(max(int(q.Duration/span*1000), 5), 1000-rv.X)
		out = append(out, rv)
	}
	return out
}
