package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/timeline"
)

// APIOptions wire the JSON API to the store.
type APIOptions struct {
	Store  *storage.Store
	Logger zerolog.Logger
	// Now is the clock for relative since/until; nil means time.Now.
	Now func() time.Time
	// Location is the default time zone of Markdown timelines (the
	// `timezone` parameter overrides it); nil means UTC.
	Location *time.Location
	// Redact scrubs secrets from text on the way out, on top of the
	// redaction done when runs are stored; nil means none.
	Redact func(string) string
	// MaxEvents caps one timeline response (default 50000).
	MaxEvents int
}

// API serves /api/v1/timeline and /api/v1/runs/... (docs/api.md).
type API struct {
	o APIOptions
}

// NewAPI builds the API handlers.
func NewAPI(o APIOptions) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 50000
	}
	return &API{o: o}
}

// Register adds the API routes to s.
func (a *API) Register(s *Server) {
	s.Handle("GET /api/v1/timeline", http.HandlerFunc(a.timeline))
	s.Handle("GET /api/v1/runs/{id}", http.HandlerFunc(a.run))
	s.Handle("GET /api/v1/runs/{id}/screenshot.png", http.HandlerFunc(a.screenshot))
	s.Handle("GET /api/v1/runs/{id}/artifacts/{n}", http.HandlerFunc(a.artifact))
}

// apiResponse is the Prometheus-style envelope.
type apiResponse struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

// writeAPI writes v as JSON with code. A value that cannot be encoded is
// a bug here, never the client's: it is logged and answered 500.
func writeAPI(w http.ResponseWriter, log zerolog.Logger, code int, v apiResponse) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		log.Error().Err(err).Msg("API request failed: encoding the response")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"status":"error","errorType":"internal","error":"encoding response"}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

func (a *API) fail(w http.ResponseWriter, code int, typ string, err error) {
	if code >= 500 {
		a.o.Logger.Error().Err(err).Msg("API request failed")
	}
	writeAPI(w, a.o.Logger, code, apiResponse{Status: "error", ErrorType: typ, Error: a.o.Redact(err.Error())})
}

func (a *API) timeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, until, err := timeline.ParseRange(q.Get("since"), q.Get("until"), a.o.Now())
	if err != nil {
		a.fail(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	loc := a.o.Location
	if tz := q.Get("timezone"); tz != "" {
		if loc, err = timeline.ParseLocation(tz); err != nil {
			a.fail(w, http.StatusBadRequest, "bad_data", err)
			return
		}
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "markdown" {
		a.fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("format %q: want json or markdown", format))
		return
	}
	all := false
	if v := q.Get("all"); v != "" {
		if all, err = strconv.ParseBool(v); err != nil {
			a.fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("all %q: want true or false", v))
			return
		}
	}
	o := timeline.Options{Location: loc, All: all, Incident: q.Get("incident")}
	evs, err := a.o.Store.Events(r.Context(), since, until)
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "internal", err)
		return
	}
	truncated := false
	if len(evs) > a.o.MaxEvents {
		// Keep the newest: the end of an incident is what is being read.
		evs, truncated = evs[len(evs)-a.o.MaxEvents:], true
	}
	for i := range evs {
		evs[i].Detail = a.o.Redact(evs[i].Detail)
	}
	if format == "markdown" {
		var b bytes.Buffer
		if err := timeline.Markdown(&b, evs, since, until, o); err != nil {
			a.timelineFail(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b.Bytes())
		return
	}
	type doc struct {
		timeline.Document
		Truncated bool `json:"truncated,omitempty"`
	}
	d, err := timeline.NewDocument(evs, since, until, o)
	if err != nil {
		a.timelineFail(w, err)
		return
	}
	writeAPI(w, a.o.Logger, http.StatusOK, apiResponse{Status: "success", Data: doc{d, truncated}})
}

// timelineFail answers an unknown incident ID with 404, the rest with 500.
func (a *API) timelineFail(w http.ResponseWriter, err error) {
	var missing *timeline.NoIncidentError
	if errors.As(err, &missing) {
		a.fail(w, http.StatusNotFound, "not_found", err)
		return
	}
	a.fail(w, http.StatusInternalServerError, "internal", err)
}

// RunJSON is the API form of a stored run (docs/api.md).
type RunJSON struct {
	ID            int64           `json:"id"`
	Target        string          `json:"target"`
	Check         string          `json:"check"`
	Path          string          `json:"path,omitempty"`
	Node          string          `json:"node,omitempty"`
	Start         time.Time       `json:"start"`
	Duration      float64         `json:"duration_seconds"`
	Result        string          `json:"result"`
	Error         string          `json:"error,omitempty"`
	Steps         json.RawMessage `json:"steps"`
	Requests      json.RawMessage `json:"requests"`
	Artifacts     []ArtifactJSON  `json:"artifacts"`
	ScreenshotURL string          `json:"screenshot_url,omitempty"`
}

// ArtifactJSON names one file of a run and where to fetch it.
type ArtifactJSON struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

func (a *API) loadRun(w http.ResponseWriter, r *http.Request) (storage.Run, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("run id %q: want a positive integer", r.PathValue("id")))
		return storage.Run{}, false
	}
	run, err := a.o.Store.Run(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		a.fail(w, http.StatusNotFound, "not_found", fmt.Errorf("run %d not found (runs are kept per target up to a bound and for the retention period)", id))
		return storage.Run{}, false
	}
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "internal", err)
		return storage.Run{}, false
	}
	return run, true
}

func (a *API) run(w http.ResponseWriter, r *http.Request) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	out := RunJSON{
		ID: run.ID, Target: run.TargetKey, Check: run.Check, Path: run.Path, Node: run.Node,
		Start: run.Start, Duration: run.Duration.Seconds(), Result: run.Result, Error: a.o.Redact(run.Reason),
		Steps: a.redactJSON(run.Steps), Requests: a.redactJSON(run.Requests), Artifacts: []ArtifactJSON{},
	}
	base := "/api/v1/runs/" + strconv.FormatInt(run.ID, 10)
	for i, f := range run.Artifacts {
		out.Artifacts = append(out.Artifacts, ArtifactJSON{Name: filepath.Base(f), URL: base + "/artifacts/" + strconv.Itoa(i)})
	}
	if screenshotIndex(run) >= 0 {
		out.ScreenshotURL = base + "/screenshot.png"
	}
	writeAPI(w, a.o.Logger, http.StatusOK, apiResponse{Status: "success", Data: out})
}

// redactJSON scrubs secrets from stored JSON; a secret never contains JSON
// syntax that the placeholder could break. Absent lists read as [].
func (a *API) redactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("[]")
	}
	s := a.o.Redact(string(raw))
	if !json.Valid([]byte(s)) {
		return json.RawMessage("[]")
	}
	return json.RawMessage(s)
}

func screenshotIndex(run storage.Run) int {
	for i, f := range run.Artifacts {
		if strings.EqualFold(filepath.Ext(f), ".png") {
			return i
		}
	}
	return -1
}

func (a *API) screenshot(w http.ResponseWriter, r *http.Request) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	i := screenshotIndex(run)
	if i < 0 {
		a.fail(w, http.StatusNotFound, "not_found", fmt.Errorf("run %d has no screenshot", run.ID))
		return
	}
	a.serveArtifact(w, r, run, i)
}

func (a *API) artifact(w http.ResponseWriter, r *http.Request) {
	run, ok := a.loadRun(w, r)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || i < 0 || i >= len(run.Artifacts) {
		a.fail(w, http.StatusNotFound, "not_found", fmt.Errorf("run %d has no artifact %q", run.ID, r.PathValue("n")))
		return
	}
	a.serveArtifact(w, r, run, i)
}

// serveArtifact serves one of the run's own files (see
// storage.ArtifactPath): a stored path naming any other file, a symlink or
// a directory that leads out of the artifacts directory is refused.
func (a *API) serveArtifact(w http.ResponseWriter, r *http.Request, run storage.Run, i int) {
	f, st, err := a.o.Store.OpenArtifact(run, i)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			a.o.Logger.Warn().Int64("run", run.ID).Err(err).Msg("refusing to serve a file the run does not own")
		}
		a.fail(w, http.StatusNotFound, "not_found", fmt.Errorf("artifact of run %d not found", run.ID))
		return
	}
	defer f.Close()
	p := f.Name()
	ctype := mime.TypeByExtension(filepath.Ext(p))
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=3600")
	if !strings.HasPrefix(ctype, "image/") || strings.Contains(ctype, "svg") {
		// Anything but a plain image is a download, never rendered in the
		// status page's origin.
		ctype = "application/octet-stream"
		h.Set("Content-Disposition", "attachment; filename="+strconv.Quote(filepath.Base(p)))
		h.Set("Content-Security-Policy", "sandbox")
	}
	h.Set("Content-Type", ctype)
	http.ServeContent(w, r, "", st.ModTime(), f)
}
