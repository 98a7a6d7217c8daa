// Package dnsprobe implements the dns check kind: one query, sent over the
// target's path to a pinned node, the configured server, the path's
// resolver or the system's, and checked against rcode and answers.
package dnsprobe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// ednsSize is the UDP payload size advertised, the DNS flag day value that
// avoids IP fragmentation.
const ednsSize = 1232

// Prober runs dns checks. Safe for concurrent use.
type Prober struct {
	logger     zerolog.Logger
	now        func() time.Time
	resolvConf string
}

// New returns a dns Prober.
func New(logger zerolog.Logger) *Prober {
	return &Prober{logger: logger, now: time.Now, resolvConf: "/etc/resolv.conf"}
}

// Probe implements probe.Prober.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) probe.Outcome {
	out := probe.Outcome{Start: p.now()}
	mono := time.Now()
	step := probe.StepResult{Start: out.Start}
	finish := func(r probe.Result, reason string) probe.Outcome {
		step.Duration = time.Since(mono)
		step.Result = r
		reason = t.Scrub(reason)
		step.Reason = reason
		out.Result, out.Reason, out.Duration = r, reason, step.Duration
		out.Steps = []probe.StepResult{step}
		return out
	}

	q := query(t)
	if q == nil || q.Name == "" {
		return finish(probe.Error, "invalid check: query.name is required")
	}
	qtype := dns.TypeA
	if q.Type != "" {
		var ok bool
		if qtype, ok = dns.StringToType[strings.ToUpper(q.Type)]; !ok {
			return finish(probe.Error, fmt.Sprintf("invalid check: unknown query type %q", q.Type))
		}
	}
	server, err := p.server(t)
	if err != nil {
		return finish(probe.Error, err.Error())
	}
	step.URL = server

	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.Name), qtype)
	m.SetEdns0(ednsSize, false)

	// UDP cannot cross an HTTP or SOCKS proxy; TCP can.
	network := "udp"
	if t.Path.HasProxy() {
		network = "tcp"
	}
	phase := "connect"
	resp, err := p.exchange(ctx, t, network, server, m, &step.Phases, &phase)
	if err == nil && resp.Truncated && network == "udp" {
		network = "tcp"
		resp, err = p.exchange(ctx, t, network, server, m, &step.Phases, &phase)
	}
	if err != nil {
		if probeutil.IsTimeout(ctx, err) {
			return finish(probe.Timeout, fmt.Sprintf("%s (%s %s)", probeutil.TimeoutReason(ctx, time.Duration(t.Check.Timeout), mono, phase), network, server))
		}
		return finish(probe.Error, err.Error())
	}

	var sb strings.Builder
	for i, rr := range resp.Answer {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(rr.String())
	}
	out.Detail = t.Scrub(sb.String())
	return finish(p.expect(t, qtype, resp, time.Since(mono)))
}

// expect checks rcode, answers_min, answers_contain and max_duration, in
// that order.
func (p *Prober) expect(t *probe.Target, qtype uint16, resp *dns.Msg, dur time.Duration) (probe.Result, string) {
	e := expectOf(t.Check.Expect)
	wantRcode := dns.RcodeSuccess
	if e.Rcode != "" {
		rc, ok := dns.StringToRcode[strings.ToUpper(e.Rcode)]
		if !ok {
			return probe.Error, fmt.Sprintf("invalid check: unknown rcode %q", e.Rcode)
		}
		wantRcode = rc
	}
	if resp.Rcode != wantRcode {
		return probe.Failure, fmt.Sprintf("rcode %s, expected %s", rcodeName(resp.Rcode), rcodeName(wantRcode))
	}
	if e.AnswersMin > 0 {
		// Count records of the asked type, so a CNAME chain does not
		// make up for missing addresses.
		n := 0
		for _, rr := range resp.Answer {
			if qtype == dns.TypeANY || rr.Header().Rrtype == qtype {
				n++
			}
		}
		if n < e.AnswersMin {
			return probe.Failure, fmt.Sprintf("%d %s answers, expected at least %d", n, dns.TypeToString[qtype], e.AnswersMin)
		}
	}
	for _, want := range e.AnswersContain {
		found := false
		for _, rr := range resp.Answer {
			if strings.Contains(rrValue(rr), want) {
				found = true
				break
			}
		}
		if !found {
			return probe.Failure, fmt.Sprintf("no answer contains %q", want)
		}
	}
	if se := t.Check.Expect; se != nil && se.MaxDuration > 0 && dur > time.Duration(se.MaxDuration) {
		return probe.Failure, fmt.Sprintf("duration %s exceeds max_duration %s",
			durfmt.Format(dur, durfmt.Setting), durfmt.Format(time.Duration(se.MaxDuration), durfmt.Setting))
	}
	return probe.Success, ""
}

// rrValue is the record's data without its header: "192.0.2.1", "10 mx.example.".
func rrValue(rr dns.RR) string {
	return strings.TrimPrefix(strings.TrimPrefix(rr.String(), rr.Header().String()), "\t")
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// server picks where the query goes: the pinned node, query.server, the
// path's resolver, else the system's first nameserver.
func (p *Prober) server(t *probe.Target) (string, error) {
	configured := query(t).Server
	if t.Node != nil {
		port := "53"
		if configured != "" {
			if _, pt, err := net.SplitHostPort(configured); err == nil {
				port = pt
			}
		}
		return t.Node.DialAddr(port), nil
	}
	if configured != "" {
		return withPort(configured), nil
	}
	if r := t.Path.Config().Resolver; r != "" {
		return withPort(r), nil
	}
	cc, err := dns.ClientConfigFromFile(p.resolvConf)
	if err != nil {
		return "", fmt.Errorf("no DNS server configured and %s unusable: %w", p.resolvConf, err)
	}
	if len(cc.Servers) == 0 {
		return "", fmt.Errorf("no DNS server configured and none in %s", p.resolvConf)
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

func withPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53")
}

// exchange sends m and reads the reply over a connection from the path.
// Framing is done here rather than by dns.Conn, which picks UDP or TCP
// framing from the connection's Go type and so misframes wrapped conns.
func (p *Prober) exchange(ctx context.Context, t *probe.Target, network, server string, m *dns.Msg, ph *probe.Phases, phase *string) (*dns.Msg, error) {
	*phase = "connect"
	start := time.Now()
	conn, err := t.Path.DialContext(ctx, network, server)
	ph.Connect += time.Since(start)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation without a deadline still has to unblock reads.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	*phase = "query"
	qStart := time.Now()
	defer func() { ph.Processing += time.Since(qStart) }()
	packed, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing query: %w", err)
	}
	if network == "tcp" {
		return exchangeTCP(conn, packed, m.Id)
	}
	if _, err := conn.Write(packed); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		resp := new(dns.Msg)
		// Stray or spoofed datagrams are skipped; the deadline bounds the wait.
		if resp.Unpack(buf[:n]) != nil || resp.Id != m.Id || !resp.Response {
			continue
		}
		return resp, nil
	}
}

func exchangeTCP(conn net.Conn, packed []byte, id uint16) (*dns.Msg, error) {
	msg := make([]byte, 2+len(packed))
	binary.BigEndian.PutUint16(msg, uint16(len(packed)))
	copy(msg[2:], packed)
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(buf); err != nil {
		return nil, fmt.Errorf("malformed reply: %w", err)
	}
	if resp.Id != id {
		return nil, errors.New("reply id does not match the query")
	}
	return resp, nil
}
