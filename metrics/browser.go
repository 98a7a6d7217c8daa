package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/expo"
	"github.com/vantage-monitoring/vantage/probe"
)

// OtherDomain is the domain label of every domain beyond a check's
// max_domains_per_check.
const OtherDomain = "other"

// defaultMaxDomains applies when the config leaves max_domains_per_check 0.
const defaultMaxDomains = 50

// browserVecs are the browser series (README, Metrics).
type browserVecs struct {
	// fams describe step, nav, reqs and reqDur, in that order.
	fams   [4]*expo.Family
	step   *prometheus.HistogramVec
	nav    *prometheus.GaugeVec
	reqs   *prometheus.CounterVec
	reqDur *prometheus.HistogramVec
	// domains are the distinct domain label values per check (capped).
	domains map[string]map[string]bool
}

// browserChildren remembers which browser series a target has, for Forget.
type browserChildren struct {
	steps   map[string]bool
	navs    map[[2]string]bool
	reqs    map[[2]string]bool
	domains map[string]bool
}

var navTimings = [...]string{"ttfb", "dom_content_loaded", "load", "lcp"}

func newBrowserVecs(n []string) *browserVecs {
	with := func(extra ...string) []string { return append(slices.Clone(n), extra...) }
	const (
		stepName, stepHelp = "vantage_browser_step_duration_seconds", "Duration of each browser journey step."
		navName, navHelp   = "vantage_browser_navigation_seconds",
			"Navigation Timing figures (ttfb, dom_content_loaded, load) and Largest Contentful Paint of each navigation in the last run."
		reqsName, reqsHelp = "vantage_browser_requests_total",
			"Requests made by browser runs, by domain and result (ok, http_error, failed, blocked)."
		durName, durHelp = "vantage_browser_request_duration_seconds", "Duration of browser requests that got a response, by domain."
	)
	return &browserVecs{
		fams: [...]*expo.Family{
			expo.NewFamily(stepName, stepHelp, dto.MetricType_HISTOGRAM, with("step")),
			expo.NewFamily(navName, navHelp, dto.MetricType_GAUGE, with("step", "timing")),
			expo.NewFamily(reqsName, reqsHelp, dto.MetricType_COUNTER, with("domain", "result")),
			expo.NewFamily(durName, durHelp, dto.MetricType_HISTOGRAM, with("domain")),
		},
		step:    prometheus.NewHistogramVec(HistogramOpts(stepName, stepHelp), with("step")),
		nav:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: navName, Help: navHelp}, with("step", "timing")),
		reqs:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: reqsName, Help: reqsHelp}, with("domain", "result")),
		reqDur:  prometheus.NewHistogramVec(HistogramOpts(durName, durHelp), with("domain")),
		domains: map[string]map[string]bool{},
	}
}

// stream emits the browser families for which want is true (all if nil).
// detail selects the histograms' buckets (nil: both kinds).
func (b *browserVecs) stream(e expo.Emitter, want func(string) bool, detail *checks.MetricsDetail) {
	for i, c := range [...]prometheus.Collector{b.step, b.nav, b.reqs, b.reqDur} {
		if want == nil || want(b.fams[i].Name()) {
			streamVec(e, b.fams[i], c, detail)
		}
	}
}

// domainLabel caps the distinct domains of a check; call with s.mu held.
func (s *vecSet) domainLabel(check, domain string) string {
	set := s.browser.domains[check]
	if set == nil {
		set = map[string]bool{}
		s.browser.domains[check] = set
	}
	if set[domain] {
		return domain
	}
	limit := s.maxDomains
	if limit <= 0 {
		limit = defaultMaxDomains
	}
	if len(set) >= limit {
		return OtherDomain
	}
	set[domain] = true
	return domain
}

// observeBrowser records a browser run's steps, navigations and requests.
func (s *vecSet) observeBrowser(ch *children, o *probe.Observation) {
	out := o.Outcome
	b := s.browser
	s.mu.Lock()
	if ch.browser == nil {
		ch.browser = &browserChildren{steps: map[string]bool{}, navs: map[[2]string]bool{},
			reqs: map[[2]string]bool{}, domains: map[string]bool{}}
	}
	bc := ch.browser
	labels := make([]string, len(out.Requests))
	for i, r := range out.Requests {
		labels[i] = s.domainLabel(o.Target.Check.Name, r.Domain)
	}
	s.mu.Unlock()

	for i := range out.Steps {
		st := &out.Steps[i]
		lv := append(slices.Clone(ch.values), st.Name)
		s.mu.Lock()
		bc.steps[st.Name] = true
		s.mu.Unlock()
		if st.Result == probe.Success {
			b.step.WithLabelValues(lv...).Observe(st.Duration.Seconds())
		}
		if n := st.Navigation; n != nil {
			vals := [...]float64{n.TTFB.Seconds(), n.DOMContentLoaded.Seconds(), n.Load.Seconds(), n.LCP.Seconds()}
			for j, name := range navTimings {
				if vals[j] <= 0 {
					continue // not measured (e.g. no contentful paint)
				}
				b.nav.WithLabelValues(append(slices.Clone(lv), name)...).Set(vals[j])
				s.mu.Lock()
				bc.navs[[2]string{st.Name, name}] = true
				s.mu.Unlock()
			}
		}
	}
	for i, r := range out.Requests {
		d := labels[i]
		b.reqs.WithLabelValues(append(slices.Clone(ch.values), d, r.Result)...).Inc()
		if r.Result == "ok" || r.Result == "http_error" {
			b.reqDur.WithLabelValues(append(slices.Clone(ch.values), d)...).Observe(r.Duration.Seconds())
		}
		s.mu.Lock()
		bc.reqs[[2]string{d, r.Result}] = true
		bc.domains[d] = true
		s.mu.Unlock()
	}
}

// forgetBrowser deletes a target's browser series.
func (s *vecSet) forgetBrowser(ch *children) {
	bc := ch.browser
	if bc == nil {
		return
	}
	b := s.browser
	v := ch.values
	for step := range bc.steps {
		b.step.DeleteLabelValues(append(slices.Clone(v), step)...)
	}
	for k := range bc.navs {
		b.nav.DeleteLabelValues(append(slices.Clone(v), k[0], k[1])...)
	}
	for k := range bc.reqs {
		b.reqs.DeleteLabelValues(append(slices.Clone(v), k[0], k[1])...)
	}
	for d := range bc.domains {
		b.reqDur.DeleteLabelValues(append(slices.Clone(v), d)...)
	}
}
