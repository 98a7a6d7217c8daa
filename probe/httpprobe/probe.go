// Package httpprobe implements the http check kind: one request or a
// multi-step journey, over a fresh connection per run, with httptrace phase
// timings, node pinning and bounded reads.
package httpprobe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// Prober runs http checks. Safe for concurrent use.
type Prober struct {
	logger zerolog.Logger
	now    func() time.Time
	tls    probeutil.TLSConfigs
	plans  planCache
	bufs   sync.Pool
	// connection buffers of h1Transport, reused across runs
	readers, writers sync.Pool
}

// Connection buffer sizes: small, as most answers of a probed endpoint are;
// longer headers still parse (textproto joins).
const (
	readBufSize  = 2 << 10
	writeBufSize = 1 << 10
)

// New returns an http Prober.
func New(logger zerolog.Logger) *Prober {
	p := &Prober{logger: logger, now: time.Now}
	p.bufs.New = func() any { return new(bytes.Buffer) }
	p.readers.New = func() any { return bufio.NewReaderSize(nil, readBufSize) }
	p.writers.New = func() any { return bufio.NewWriterSize(nil, writeBufSize) }
	return p
}

// Bodies larger than this are not kept for reuse, so one huge page does not
// pin its buffer in memory.
const maxPooledBuf = 1 << 20

// traceKey carries a request's *stepTrace to the dial hook, which the
// transport calls with a context that keeps the request's values.
type traceKey struct{}

// stepTrace accumulates the phases of one step over all its redirect hops.
// Hooks run on transport goroutines, hence the mutex.
type stepTrace struct {
	mu        sync.Mutex
	ph        probe.Phases
	phase     string
	tlsStart  time.Time
	wrote     time.Time
	firstByte time.Time
}

func (st *stepTrace) setPhase(p string) { st.mu.Lock(); st.phase = p; st.mu.Unlock() }

// getConn: a new hop starts, and the previous hop's transfer ends here.
func (st *stepTrace) getConn() {
	st.mu.Lock()
	if !st.firstByte.IsZero() {
		st.ph.Transfer += time.Since(st.firstByte)
		st.firstByte = time.Time{}
	}
	st.phase = "connect"
	st.mu.Unlock()
}

func (st *stepTrace) tlsHandshakeStart() {
	st.mu.Lock()
	st.tlsStart = time.Now()
	st.phase = "tls"
	st.mu.Unlock()
}

func (st *stepTrace) tlsHandshakeDone() {
	st.mu.Lock()
	if !st.tlsStart.IsZero() {
		st.ph.TLS += time.Since(st.tlsStart)
		st.ph.HasTLS = true
		st.tlsStart = time.Time{}
	}
	st.mu.Unlock()
}

func (st *stepTrace) wroteRequest() {
	st.mu.Lock()
	st.wrote = time.Now()
	st.phase = "processing"
	st.mu.Unlock()
}

func (st *stepTrace) gotFirstByte() {
	st.mu.Lock()
	now := time.Now()
	if !st.wrote.IsZero() {
		st.ph.Processing += now.Sub(st.wrote)
		st.wrote = time.Time{}
	}
	st.firstByte = now
	st.phase = "transfer"
	st.mu.Unlock()
}

// withClientTrace has http.Transport report the phases of its requests to st.
func withClientTrace(ctx context.Context, st *stepTrace) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:              func(string) { st.getConn() },
		GotConn:              func(httptrace.GotConnInfo) { st.setPhase("request") },
		TLSHandshakeStart:    st.tlsHandshakeStart,
		TLSHandshakeDone:     func(tls.ConnectionState, error) { st.tlsHandshakeDone() },
		WroteRequest:         func(httptrace.WroteRequestInfo) { st.wroteRequest() },
		GotFirstResponseByte: st.gotFirstByte,
	})
}

func (st *stepTrace) addDial(dt probeutil.DialTiming) {
	st.mu.Lock()
	st.ph.DNS += dt.DNS
	st.ph.Connect += dt.Connect
	st.ph.HasDNS = st.ph.HasDNS || dt.HasDNS
	st.mu.Unlock()
}

// finish closes the last hop's transfer and returns the phases.
func (st *stepTrace) finish() (probe.Phases, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.firstByte.IsZero() {
		st.ph.Transfer += time.Since(st.firstByte)
		st.firstByte = time.Time{}
	}
	return st.ph, st.phase
}

// run is the state of one probe run: its own transport, cookie jar and
// variables, none of which outlive it.
type run struct {
	p        *Prober
	t        *probe.Target
	pl       *plan
	ctx      context.Context
	client   http.Client
	rt       h1Transport
	jar      lazyJar
	vars     map[string]string
	mono     time.Time
	deadline time.Time
	dialer   probeutil.Dialer
	tls      *tls.Config // the check's or path's TLS settings; nil for Go's defaults
	cert     time.Time   // CertNotAfter for the outcome
	certPin  bool        // cert came from the pin host
}

// lazyJar is a run's cookie jar, made when the first cookie is set: most
// runs never see one.
type lazyJar struct{ j *cookiejar.Jar }

func (l *lazyJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	if l.j == nil {
		l.j, _ = cookiejar.New(nil) // never fails with nil options
	}
	l.j.SetCookies(u, cookies)
}

func (l *lazyJar) Cookies(u *url.URL) []*http.Cookie {
	if l.j == nil {
		return nil
	}
	return l.j.Cookies(u)
}

// Probe implements probe.Prober.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) probe.Outcome {
	out := probe.Outcome{Start: p.now()}
	mono := time.Now()
	pl, err := p.plan(t.Check)
	if err != nil {
		out.Result, out.Reason = probe.Error, redact(t, nil, "invalid check: "+err.Error())
		out.Duration = time.Since(mono)
		return out
	}
	base, err := p.tls.Get(t.Check.TLS, t.Path.Config().TLS)
	if err != nil {
		out.Result, out.Reason = probe.Error, redact(t, pl, err.Error())
		out.Duration = time.Since(mono)
		return out
	}
	r := &run{p: p, t: t, pl: pl, ctx: ctx, mono: mono}
	r.deadline, _ = ctx.Deadline()
	r.dialer = probeutil.Dialer{Path: t.Path, Node: t.Node, PinHost: pl.pinHost}

	r.tls = base
	r.rt.r = r
	defer r.rt.close()
	r.client = http.Client{Transport: &r.rt, Jar: &r.jar}
	if pl.journey {
		r.vars = make(map[string]string)
	}

	out.Steps = make([]probe.StepResult, 0, len(pl.steps))
	out.Result = probe.Success
	for i := range pl.steps {
		sr := r.step(&pl.steps[i])
		out.Steps = append(out.Steps, sr)
		if sr.Result != probe.Success {
			out.Result = sr.Result
			out.Reason = sr.Reason
			if pl.journey {
				out.Reason = redact(t, pl, fmt.Sprintf("step %q: %s", sr.Name, sr.Reason))
			}
			break
		}
	}
	out.Duration = time.Since(mono)
	out.CertNotAfter = r.cert
	if out.Result == probe.Success && pl.journey {
		if pl.maxDuration > 0 && out.Duration > pl.maxDuration {
			out.Result = probe.Failure
			out.Reason = fmt.Sprintf("duration %s exceeds max_duration %s",
				durfmt.Format(out.Duration, durfmt.Setting), durfmt.Format(pl.maxDuration, durfmt.Setting))
		} else if pl.tlsMinDays > 0 {
			if r.cert.IsZero() {
				out.Result, out.Reason = probe.Failure, "tls_min_days set but no response was served over TLS"
			} else if s := probeutil.CertReason(r.cert, p.now(), pl.tlsMinDays); s != "" {
				out.Result, out.Reason = probe.Failure, s
			}
		}
	}
	return out
}

// stdTransport is the run's http.Transport for what h1Transport leaves to
// net/http: https (TLS, HTTP/2 where the server offers it) and the rarer
// plain requests.
func (r *run) stdTransport() *http.Transport {
	tlsCfg := &tls.Config{}
	if r.tls != nil {
		// The transport edits NextProtos in place; never hand it a shared config.
		tlsCfg = r.tls.Clone()
	}
	return &http.Transport{
		DialContext:       r.dial,
		TLSClientConfig:   tlsCfg,
		ForceAttemptHTTP2: true,
		// Connections are reused within a run (as a customer's would be)
		// but never across runs: the run closes the transport at its end.
		MaxIdleConnsPerHost:    4,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// A fresh connection per run allocates fresh buffers per run: 4 KiB
		// each by default, a third of a probe's garbage at 1,000 probes/s.
		// Headers longer than the buffer still parse (textproto joins).
		ReadBufferSize:  readBufSize,
		WriteBufferSize: writeBufSize,
	}
}

// dial is the transport's DialContext: pinning and DNS timing live in
// probeutil.Dialer; the phases go to the step whose request asked.
func (r *run) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	// http.Transport detaches dials from request cancellation; keep them
	// inside the run's deadline anyway (h1Transport's carry it already).
	if dl, ok := ctx.Deadline(); !r.deadline.IsZero() && (!ok || dl.After(r.deadline)) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, r.deadline)
		defer cancel()
	}
	st, _ := ctx.Value(traceKey{}).(*stepTrace)
	d := r.dialer
	if st != nil {
		d.OnPhase = st.setPhase
	}
	conn, dt, err := d.Dial(ctx, network, addr)
	if st != nil {
		st.addDial(dt)
	}
	return conn, err
}

// step runs one request (with its redirects) and checks its expectations.
func (r *run) step(sp *stepPlan) probe.StepResult {
	t, pl := r.t, r.pl
	sr := probe.StepResult{Name: sp.name, Start: r.p.now()}
	stepMono := time.Now()
	fail := func(res probe.Result, reason string) probe.StepResult {
		sr.Result = res
		sr.Reason = redact(t, pl, reason)
		if sr.Duration == 0 {
			sr.Duration = time.Since(stepMono)
		}
		return sr
	}
	if err := r.ctx.Err(); err != nil {
		return fail(probe.Timeout, probeutil.TimeoutReason(r.ctx, time.Duration(r.t.Check.Timeout), r.mono, ""))
	}

	rawURL, err := sp.url.render(r.vars)
	if err != nil {
		return fail(probe.Failure, err.Error())
	}
	var body io.Reader
	if sp.hasBody {
		b, err := sp.body.render(r.vars)
		if err != nil {
			return fail(probe.Failure, err.Error())
		}
		body = strings.NewReader(b)
	}

	st := &stepTrace{}
	ctx := context.WithValue(r.ctx, traceKey{}, st)
	req, err := http.NewRequestWithContext(ctx, sp.method, rawURL, body)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fail(probe.Error, "invalid url: "+err.Error())
		}
		return fail(probe.Error, "building request: "+err.Error())
	}
	sr.URL = redact(t, pl, req.URL.Redacted())
	for _, h := range sp.headers {
		v, err := h.val.render(r.vars)
		if err != nil {
			return fail(probe.Failure, err.Error())
		}
		if strings.EqualFold(h.name, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(h.name, v)
	}
	if !sp.hasUA {
		req.Header.Set("User-Agent", defaultUserAgent)
	}
	if sp.hasBasic {
		req.SetBasicAuth(sp.basicUser, sp.basicPass)
	}
	if sp.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+sp.bearer)
	}
	follow, maxRedirects := sp.follow, pl.maxRedirects
	r.client.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}

	resp, err := r.client.Do(req)
	if err != nil {
		sr.Phases, _ = st.finish()
		return r.failErr(fail, st, err)
	}
	sr.StatusCode = resp.StatusCode

	// Read the body to the end (a customer downloads all of it), keeping
	// it only when an assertion needs it; one byte over the limit tells
	// an oversized body from one exactly at it.
	lr := io.LimitedReader{R: resp.Body, N: pl.maxBody + 1}
	var buf *bytes.Buffer
	if sp.needBody {
		buf = r.p.bufs.Get().(*bytes.Buffer)
		buf.Reset()
		defer r.p.putBuf(buf)
		_, err = buf.ReadFrom(&lr)
	} else {
		_, err = io.Copy(io.Discard, &lr)
	}
	resp.Body.Close()
	sr.Phases, _ = st.finish()
	sr.Duration = time.Since(stepMono)
	if err != nil {
		return r.failErr(fail, st, fmt.Errorf("reading body: %w", err))
	}
	if lr.N == 0 {
		return fail(probe.Error, "response body exceeds max_body_bytes ("+formatSize(pl.maxBody)+")")
	}

	rs := response{status: resp.StatusCode, header: resp.Header, now: r.p.now(), duration: sr.Duration,
		redact: func(s string) string { return redact(t, pl, s) }}
	if !pl.journey {
		rs.duration = time.Since(r.mono)
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		rs.certNotAfter = resp.TLS.PeerCertificates[0].NotAfter
		pin := strings.EqualFold(resp.Request.URL.Hostname(), pl.pinHost)
		if r.cert.IsZero() || (pin && !r.certPin) {
			r.cert, r.certPin = rs.certNotAfter, pin
		}
	}
	if buf != nil {
		rs.body = buf.Bytes()
	}
	if reason := sp.expect.check(&rs); reason != "" {
		return fail(probe.Failure, reason)
	}
	if reason := extractVars(sp.extract, rs.body, r.vars); reason != "" {
		return fail(probe.Failure, reason)
	}
	sr.Result = probe.Success
	return sr
}

// failErr classifies a transport error: the check's deadline is a timeout
// naming the phase it cut short; anything else is an error.
func (r *run) failErr(fail func(probe.Result, string) probe.StepResult, st *stepTrace, err error) probe.StepResult {
	_, phase := st.finish()
	if probeutil.IsTimeout(r.ctx, err) {
		return fail(probe.Timeout, probeutil.TimeoutReason(r.ctx, time.Duration(r.t.Check.Timeout), r.mono, phase))
	}
	// url.Error repeats method and URL, which the step already names.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fail(probe.Error, err.Error())
}

func (p *Prober) putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		p.bufs.Put(b)
	}
}

// redact scrubs the check's own secrets and then the target's.
func redact(t *probe.Target, pl *plan, s string) string {
	if s == "" {
		return s
	}
	if pl != nil {
		s = pl.scrub.Redact(s)
	}
	if t.Redact != nil {
		s = t.Redact(s)
	}
	return s
}
