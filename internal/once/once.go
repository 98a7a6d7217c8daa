// Package once is `vantage once`: run every matching target of a config
// once and print the results as a table or JSON. Each kind's traits
// (checks.Traits) shape its rows, so a new kind needs nothing here.
package once

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// Result is one target's run as `vantage once --output=json` prints it.
type Result struct {
	Check     string          `json:"check"`
	Type      string          `json:"type"`
	Path      string          `json:"path"`
	Node      string          `json:"node"`
	Result    string          `json:"result"`
	Reason    string          `json:"reason,omitempty"`
	Duration  float64         `json:"duration_seconds"`
	Steps     []Step          `json:"steps,omitempty"`
	Cert      *time.Time      `json:"cert_not_after,omitempty"`
	Detail    string          `json:"detail,omitempty"`
	Requests  []probe.Request `json:"requests,omitempty"`
	Artifacts []string        `json:"artifacts,omitempty"`

	traits checks.Traits
}

type Step struct {
	Name     string             `json:"name"`
	URL      string             `json:"url,omitempty"`
	Result   string             `json:"result"`
	Reason   string             `json:"reason,omitempty"`
	Status   int                `json:"status,omitempty"`
	Duration float64            `json:"duration_seconds"`
	Phases   map[string]float64 `json:"phases,omitempty"`
}

// Run loads file with the kinds of reg within lim, runs the checks
// matching only (names or globs; empty: all) once with probers, prints
// the results to stdout as a table or, with output "json", as JSON, and
// returns the exit code: 1 when a run failed or nothing ran.
func Run(reg *checks.Registry, probers map[string]probe.Prober, file string, lim checks.Limits, only []string, output string, stdout, stderr io.Writer) int {
	kinds := probers
	cfg, err := reg.LoadWithLimits(file, os.LookupEnv, lim)
	if err != nil {
		checks.WriteErrors(stderr, err)
		return 1
	}
	paths := map[string]*netpath.Path{}
	for _, pc := range cfg.Paths {
		p, err := netpath.New(pc)
		if err != nil {
			fmt.Fprintf(stderr, "path %q: %v\n", pc.Name, err)
			return 1
		}
		paths[pc.Name] = p
	}
	match := func(name string) bool {
		if len(only) == 0 {
			return true
		}
		for _, pat := range only {
			if ok, _ := path.Match(pat, name); ok || pat == name {
				return true
			}
		}
		return false
	}
	ctx := context.Background()
	targets := probe.ExpandTargets(ctx, cfg, paths, match)
	if len(targets) == 0 {
		fmt.Fprintln(stderr, "no check matched")
		return 1
	}
	results := make([]Result, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	slots := probe.NewSlots(kinds) // as the scheduler: queueing is not timeout
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, _ := slots.Acquire(ctx, t.Check.Type) // ctx never ends here
			defer release()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := probe.RunOnce(ctx, kinds[t.Check.Type], t)
			results[i] = toOnce(t, &out)
		}()
	}
	wg.Wait()
	for _, k := range kinds {
		if c, ok := k.(io.Closer); ok {
			_ = c.Close() // the browser: no Chromium outlives the command
		}
	}
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Node < b.Node
	})
	failed := false
	for _, r := range results {
		if r.Result != string(probe.Success) {
			failed = true
		}
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // reasons quote HTML and URLs with &; keep them readable
		_ = enc.Encode(results)
	} else {
		printTable(stdout, results)
	}
	if failed {
		return 1
	}
	return 0
}

func toOnce(t *probe.Target, o *probe.Outcome) Result {
	r := Result{
		Check: t.Check.Name, Type: t.Check.Type, Path: t.Path.Name(), Node: t.Node.Label(),
		Result: string(o.Result), Reason: o.Reason, Duration: o.Duration.Seconds(),
		Detail: t.Redact(o.Detail), Requests: o.Requests, Artifacts: o.Artifacts,
		traits: t.Check.Traits(),
	}
	if !o.CertNotAfter.IsZero() {
		c := o.CertNotAfter
		r.Cert = &c
	}
	for _, s := range o.Steps {
		st := Step{Name: s.Name, URL: s.URL, Result: string(s.Result), Reason: s.Reason,
			Status: s.StatusCode, Duration: s.Duration.Seconds(), Phases: map[string]float64{}}
		p := s.Phases
		if p.HasDNS {
			st.Phases["dns"] = p.DNS.Seconds()
		}
		st.Phases["connect"] = p.Connect.Seconds()
		if p.HasTLS {
			st.Phases["tls"] = p.TLS.Seconds()
		}
		st.Phases["processing"] = p.Processing.Seconds()
		st.Phases["transfer"] = p.Transfer.Seconds()
		r.Steps = append(r.Steps, st)
	}
	return r
}

func ms(d float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1fms", d*1000)
}

func printTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tPATH\tNODE\tRESULT\tTOTAL\tDNS\tCONNECT\tTLS\tTTFB\tTRANSFER\tDETAIL")
	for _, r := range results {
		node := r.Node
		if node == "" {
			node = "-"
		}
		var dns, conn, tls, ttfb, xfer string = "-", "-", "-", "-", "-"
		if len(r.Steps) == 1 {
			p := r.Steps[0].Phases
			d, okd := p["dns"]
			t, okt := p["tls"]
			c, okc := p["connect"]
			f, okf := p["processing"]
			x, okx := p["transfer"]
			dns, conn, tls, ttfb, xfer = ms(d, okd), ms(c, okc), ms(t, okt), ms(f, okf), ms(x, okx)
		}
		detail := r.Reason
		if detail == "" && r.Cert != nil {
			detail = fmt.Sprintf("cert expires %s", r.Cert.Format("2006-01-02"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Check, r.Path, node, r.Result,
			ms(r.Duration, true), dns, conn, tls, ttfb, xfer, oneLine(detail))
		if r.traits.Pages {
			printBrowser(tw, r)
		} else if len(r.Steps) > 1 {
			for _, s := range r.Steps {
				p := s.Phases
				d, okd := p["dns"]
				t, okt := p["tls"]
				fmt.Fprintf(tw, "  step %s\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Result, ms(s.Duration, true),
					ms(d, okd), ms(p["connect"], true), ms(t, okt), ms(p["processing"], true), ms(p["transfer"], true), oneLine(s.Reason))
			}
		}
		if r.Detail != "" && r.traits.DetailLabel != "" {
			fmt.Fprintf(tw, "  %s\t\t\t\t\t\t\t\t\t\t%s\n", r.traits.DetailLabel, oneLine(strings.ReplaceAll(r.Detail, "\n", ", ")))
		}
		for _, a := range r.Artifacts {
			fmt.Fprintf(tw, "  artifact\t\t\t\t\t\t\t\t\t\t%s\n", a)
		}
	}
	tw.Flush()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// printBrowser adds a browser run's steps and a per-domain summary of its
// requests under the run's row.
func printBrowser(tw io.Writer, r Result) {
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "  step %s\t\t\t%s\t%s\t\t\t\t\t\t%s\n", s.Name, s.Result, ms(s.Duration, true), oneLine(s.Reason))
	}
	type dom struct {
		n, bad  int
		slowest float64
		results map[string]int
		why     string // the last failed request's reason: what the domain did
	}
	doms := map[string]*dom{}
	var names []string
	for _, q := range r.Requests {
		d := doms[q.Domain]
		if d == nil {
			d = &dom{results: map[string]int{}}
			doms[q.Domain] = d
			names = append(names, q.Domain)
		}
		d.n++
		d.results[q.Result]++
		if q.Result != "ok" && q.Result != "blocked" {
			d.bad++
			if q.Failure != "" {
				d.why = q.Failure
			}
		}
		if s := q.Duration.Seconds(); s > d.slowest {
			d.slowest = s
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d := doms[n]
		var parts []string
		for _, res := range []string{"ok", "http_error", "failed", "blocked"} {
			if c := d.results[res]; c > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c, res))
			}
		}
		verdict := "ok"
		if d.bad > 0 {
			verdict = "FAILING"
		}
		why := ""
		if d.why != "" {
			why = "; last failure: " + oneLine(d.why)
		}
		fmt.Fprintf(tw, "  domain %s\t\t\t%s\t%s\t\t\t\t\t\t%s (slowest request in TOTAL)%s\n",
			n, verdict, ms(d.slowest, true), strings.Join(parts, ", "), why)
	}
}
