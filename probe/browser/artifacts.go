package browser

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vantage-monitoring/vantage/probe"
)

// har is a HAR 1.2 document, with vantage's per-request verdicts in
// underscore fields (the HAR way of extending).
type har struct {
	Log harLog `json:"log"`
}

type harLog struct {
	Version string     `json:"version"`
	Creator harCreator `json:"creator"`
	Pages   []harPage  `json:"pages"`
	Entries []harEntry `json:"entries"`
	// vantage extensions
	Check  string    `json:"_check"`
	Path   string    `json:"_path"`
	Node   string    `json:"_node"`
	Result string    `json:"_result"`
	Reason string    `json:"_reason,omitempty"`
	Steps  []harStep `json:"_steps"`
	Conns  string    `json:"_connections,omitempty"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harPage struct {
	StartedDateTime string         `json:"startedDateTime"`
	ID              string         `json:"id"`
	Title           string         `json:"title"`
	PageTimings     map[string]any `json:"pageTimings"`
}

type harStep struct {
	Name       string  `json:"name"`
	Result     string  `json:"result"`
	Reason     string  `json:"reason,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	TTFBMS     float64 `json:"ttfb_ms,omitempty"`
	DCLMS      float64 `json:"dom_content_loaded_ms,omitempty"`
	LoadMS     float64 `json:"load_ms,omitempty"`
	LCPMS      float64 `json:"lcp_ms,omitempty"`
}

type harEntry struct {
	PageRef         string         `json:"pageref"`
	StartedDateTime string         `json:"startedDateTime"`
	Time            float64        `json:"time"`
	Request         harRequest     `json:"request"`
	Response        harResponse    `json:"response"`
	Cache           struct{}       `json:"cache"`
	Timings         map[string]any `json:"timings"`
	Domain          string         `json:"_domain"`
	Result          string         `json:"_result"`
	Failure         string         `json:"_failure,omitempty"`
	Type            string         `json:"_resourceType,omitempty"`
}

type harRequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	HTTPVersion string `json:"httpVersion"`
	Cookies     []any  `json:"cookies"`
	Headers     []any  `json:"headers"`
	QueryString []any  `json:"queryString"`
	HeadersSize int    `json:"headersSize"`
	BodySize    int    `json:"bodySize"`
}

type harResponse struct {
	Status      int            `json:"status"`
	StatusText  string         `json:"statusText"`
	HTTPVersion string         `json:"httpVersion"`
	Cookies     []any          `json:"cookies"`
	Headers     []any          `json:"headers"`
	Content     map[string]any `json:"content"`
	RedirectURL string         `json:"redirectURL"`
	HeadersSize int            `json:"headersSize"`
	BodySize    int            `json:"bodySize"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func buildHAR(t *probe.Target, out *probe.Outcome) har {
	l := harLog{
		Version: "1.2",
		Creator: harCreator{Name: "vantage", Version: "1"},
		Pages: []harPage{{StartedDateTime: out.Start.UTC().Format(time.RFC3339Nano), ID: "run",
			Title: t.Check.Name, PageTimings: map[string]any{}}},
		Entries: []harEntry{},
		Check:   t.Check.Name, Path: t.Path.Name(), Node: t.Node.Label(),
		Result: string(out.Result), Reason: out.Reason, Conns: out.Detail,
	}
	for _, s := range out.Steps {
		hs := harStep{Name: s.Name, Result: string(s.Result), Reason: s.Reason, DurationMS: ms(s.Duration)}
		if n := s.Navigation; n != nil {
			hs.TTFBMS, hs.DCLMS, hs.LoadMS, hs.LCPMS = ms(n.TTFB), ms(n.DOMContentLoaded), ms(n.Load), ms(n.LCP)
		}
		l.Steps = append(l.Steps, hs)
	}
	for _, q := range out.Requests {
		l.Entries = append(l.Entries, harEntry{
			PageRef: "run", StartedDateTime: q.Start.UTC().Format(time.RFC3339Nano), Time: ms(q.Duration),
			Request: harRequest{Method: q.Method, URL: q.URL, HTTPVersion: "", Cookies: []any{}, Headers: []any{},
				QueryString: []any{}, HeadersSize: -1, BodySize: -1},
			Response: harResponse{Status: q.Status, Cookies: []any{}, Headers: []any{},
				Content: map[string]any{"size": -1, "mimeType": ""}, HeadersSize: -1, BodySize: -1},
			Timings: map[string]any{"send": 0, "wait": ms(q.Duration), "receive": 0},
			Domain:  q.Domain, Result: q.Result, Failure: q.Failure, Type: q.Type,
		})
	}
	return har{Log: l}
}

// writeArtifacts stores the screenshot (if any) and the HAR of one run under
// <storage>/artifacts/<check>/<time>-<path>-<node>.{png,json} and trims the
// target's older runs to KeepArtifacts.
func (p *Prober) writeArtifacts(t *probe.Target, out *probe.Outcome, shot []byte) ([]string, error) {
	// The storage serves a run only the files named by its stem.
	base := filepath.Join(p.opts.StorageDir, filepath.FromSlash(probe.ArtifactStem(t.Check.Name, t.Path.Name(), t.Node.Label(), out.Start)))
	dir := filepath.Dir(base)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	suffix := probe.ArtifactSuffix(t.Path.Name(), t.Node.Label())
	var paths []string
	if len(shot) > 0 {
		if err := os.WriteFile(base+".png", shot, 0o640); err != nil {
			return paths, err
		}
		paths = append(paths, base+".png")
	}
	b, err := json.MarshalIndent(buildHAR(t, out), "", " ")
	if err != nil {
		return paths, err
	}
	if err := os.WriteFile(base+".json", b, 0o640); err != nil {
		return paths, err
	}
	paths = append(paths, base+".json")
	p.artMu.Lock()
	defer p.artMu.Unlock()
	return paths, trimArtifacts(dir, suffix, p.opts.KeepArtifacts)
}

// trimArtifacts keeps the newest keep runs of one target in dir.
func trimArtifacts(dir, suffix string, keep int) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	tl := probe.ArtifactTimeLen
	runs := map[string][]string{} // time stamp -> files
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		if len(stem) != tl+len(suffix) || stem[tl:] != suffix || (ext != ".png" && ext != ".json") {
			continue
		}
		runs[stem[:tl]] = append(runs[stem[:tl]], name)
	}
	if len(runs) <= keep {
		return nil
	}
	stamps := slices.Sorted(maps.Keys(runs))
	var errs []string
	for _, s := range stamps[:len(stamps)-keep] {
		for _, name := range runs[s] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("artifact retention: %s", strings.Join(errs, "; "))
	}
	return nil
}
