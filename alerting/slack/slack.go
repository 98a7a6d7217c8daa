// Package slack posts vantage alerts to a Slack or Mattermost incoming
// webhook: one readable message per batch, which names the node and path,
// says how often the alert came back (flap memory), and on resolve says
// for how long it fired rather than a bare "recovered".
//
// The message has "text" (Mattermost shows it; Slack uses it for
// notifications) and Slack "blocks". Links use Slack's <url|text> form,
// which Mattermost translates; the text avoids *bold*, which Mattermost
// renders differently.
package slack

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/durfmt"
)

// Slack limits: 3000 characters per section text and 50 blocks per
// message; alerts beyond MaxAlerts are counted, not shown.
const (
	MaxAlerts       = 20
	maxSectionChars = 3000
	maxTextChars    = 39000
)

// Message is the incoming-webhook body.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks,omitempty"`
}

// Block is a Slack Block Kit block (section or context).
type Block struct {
	Type     string  `json:"type"`
	Text     *Text   `json:"text,omitempty"`
	Elements []*Text `json:"elements,omitempty"`
}

// Text is a Block Kit text object.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Notifier posts to one incoming webhook.
type Notifier struct {
	name         string
	sendResolved bool
	now          func() time.Time
	flapWindow   time.Duration
	post         *alerting.Poster
}

// Notifier must satisfy the dispatcher's interface.
var _ alerting.Notifier = (*Notifier)(nil)

// New builds a Slack/Mattermost notifier.
func New(cfg checks.Notifier, opts alerting.NotifierOptions) (*Notifier, error) {
	p, err := alerting.NewPoster(cfg, cfg.URL, opts)
	if err != nil {
		return nil, err
	}
	n := &Notifier{name: cfg.Name, sendResolved: cfg.SendResolved == nil || *cfg.SendResolved,
		now: opts.Now, flapWindow: opts.FlapWindow, post: p}
	if n.now == nil {
		n.now = time.Now
	}
	if n.flapWindow <= 0 {
		n.flapWindow = time.Hour
	}
	return n, nil
}

// Name is the notifier's configured name.
func (n *Notifier) Name() string { return n.name }

// Send posts the batch as one message (one attempt). With send_resolved
// false, resolved notifications are left out; an empty batch is a no-op.
func (n *Notifier) Send(ctx context.Context, batch []alerting.Notification) error {
	if !n.sendResolved {
		batch = alerting.FiringOnly(batch)
	}
	if len(batch) == 0 {
		return nil
	}
	body, err := alerting.Encode(Render(batch, n.now(), n.flapWindow))
	if err != nil {
		return &alerting.SendError{Permanent: true, Err: fmt.Errorf("encode slack message: %w", err)}
	}
	return n.post.PostJSON(ctx, body)
}

// Render builds the message for batch at now.
func Render(batch []alerting.Notification, now time.Time, flapWindow time.Duration) Message {
	var m Message
	var texts []string
	shown := batch
	if len(shown) > MaxAlerts {
		shown = shown[:MaxAlerts]
	}
	if len(batch) > 1 {
		head := batchHeadline(batch)
		texts = append(texts, head)
		m.Blocks = append(m.Blocks, section("*"+head+"*"))
	}
	for _, nt := range shown {
		a := render(nt, now, flapWindow)
		texts = append(texts, a.plain())
		m.Blocks = append(m.Blocks, section(a.mrkdwn()))
	}
	if more := len(batch) - len(shown); more > 0 {
		s := fmt.Sprintf("…and %d more", more)
		texts = append(texts, s)
		m.Blocks = append(m.Blocks, Block{Type: "context", Elements: []*Text{{Type: "mrkdwn", Text: s}}})
	}
	m.Text = truncate(strings.Join(texts, "\n\n"), maxTextChars)
	return m
}

func section(s string) Block {
	return Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: truncate(s, maxSectionChars)}}
}

// batchHeadline counts a multi-alert batch: "[FIRING:2, RESOLVED:1] Name".
func batchHeadline(batch []alerting.Notification) string {
	var firing, resolved int
	names := map[string]bool{}
	for _, nt := range batch {
		if alerting.StatusOf(nt) == "firing" {
			firing++
		} else {
			resolved++
		}
		names[nt.Instance.Labels["alertname"]] = true
	}
	var counts []string
	if firing > 0 {
		counts = append(counts, "FIRING:"+strconv.Itoa(firing))
	}
	if resolved > 0 {
		counts = append(counts, "RESOLVED:"+strconv.Itoa(resolved))
	}
	emoji := ":white_check_mark:"
	if firing > 0 {
		emoji = ":rotating_light:"
	}
	title := "vantage alerts"
	if len(names) == 1 {
		for name := range names {
			if name != "" {
				title = escape(name)
			}
		}
	}
	return emoji + " [" + strings.Join(counts, ", ") + "] " + title
}

// alert is one notification in words; every field is already escaped.
type alert struct {
	emoji, tag, title string
	detail            []string
	links             []string
}

func (a alert) plain() string {
	lines := append([]string{a.emoji + " " + a.tag + " " + a.title}, a.detail...)
	if len(a.links) > 0 {
		lines = append(lines, strings.Join(a.links, " · "))
	}
	return strings.Join(lines, "\n")
}

func (a alert) mrkdwn() string {
	lines := append([]string{a.emoji + " *" + a.tag + " " + a.title + "*"}, a.detail...)
	if len(a.links) > 0 {
		lines = append(lines, strings.Join(a.links, " · "))
	}
	return strings.Join(lines, "\n")
}

func render(nt alerting.Notification, now time.Time, flapWindow time.Duration) alert {
	inst := nt.Instance
	ann := inst.Annotations
	firing := alerting.StatusOf(nt) == "firing"
	a := alert{emoji: ":rotating_light:", tag: "[FIRING]"}
	if !firing {
		a.emoji, a.tag = ":white_check_mark:", "[RESOLVED]"
	}
	name := inst.Labels["alertname"]
	if name == "" {
		name = inst.Rule
	}
	a.title = escape(name)
	if where := where(inst.Labels, ann["node_address"]); where != "" {
		a.title += " — " + escape(where)
	}
	if firing {
		v := formatValue(inst.Value)
		if inst.Measure != "" {
			v = alerting.FormatValue(inst.Measure, inst.Value)
		}
		a.title += " (value " + v + ")"
	}

	if !firing {
		// The resolution always says how long it fired and how often:
		// a bare "recovered" is what made the incident's team stop looking.
		res := ann["resolution"]
		if res == "" {
			res = resolution(nt, flapWindow)
		}
		a.detail = append(a.detail, escape(res))
	}
	if s := firstOf(ann, "summary", "description", "message"); s != "" {
		a.detail = append(a.detail, escape(s))
	}
	if firing {
		// A node alert stands for the alerts folded into it: one message
		// says which checks and paths show it and since when.
		if own, sib := ann["node_p90"], ann["siblings_p90"]; own != "" && sib != "" {
			a.detail = append(a.detail, escape("p90 "+own+" vs "+sib+" on its siblings"))
		}
		if v := ann["affected"]; v != "" {
			line := "Affected: " + v
			if t, err := time.Parse(time.RFC3339, ann["active_since"]); err == nil {
				line = "Affected since " + clock(t, now) + ": " + v
			}
			a.detail = append(a.detail, escape(line))
		}
		if v := ann["folded"]; v != "" {
			a.detail = append(a.detail, escape("Folded into this page: "+v))
		}
		a.detail = append(a.detail, escape(flapLine(nt, now, flapWindow)))
	}
	if nt.GeneratorURL != "" {
		a.links = append(a.links, link(nt.GeneratorURL, "Status page"))
	}
	if rb := ann["runbook_url"]; rb != "" {
		a.links = append(a.links, link(rb, "Runbook"))
	}
	return a
}

// where names the affected target: "shop-home via direct node 127.0.0.12",
// plus the domain for domain rules; a named node also gets its address
// ("node lb2 (127.0.0.12)").
func where(l map[string]string, addr string) string {
	var parts []string
	if v := l["check"]; v != "" {
		parts = append(parts, v)
	}
	if v := l["domain"]; v != "" {
		parts = append(parts, "domain "+v)
	}
	if v := l["path"]; v != "" {
		parts = append(parts, "via "+v)
	}
	if v := l["node"]; v != "" {
		if addr == "" {
			addr = l["node_address"]
		}
		if addr != "" && addr != v {
			v += " (" + addr + ")"
		}
		parts = append(parts, "node "+v)
	}
	return strings.Join(parts, " ")
}

// flapLine is the flap memory of a firing notification in words.
func flapLine(nt alerting.Notification, now time.Time, flapWindow time.Duration) string {
	ann := nt.Instance.Annotations
	count := len(nt.Instance.Fired)
	if c, err := strconv.Atoi(ann["fired_count"]); err == nil {
		count = c
	}
	first := alerting.StartOf(nt)
	if t, err := time.Parse(time.RFC3339, ann["first_fired_at"]); err == nil {
		first = t
	} else if len(nt.Instance.Fired) > 0 {
		first = nt.Instance.Fired[0]
	}
	window := alerting.WindowPhrase(flapWindow)
	if count <= 1 {
		return "firing since " + clock(first, now) + " (first time in the last " + window + ")"
	}
	s := fmt.Sprintf("fired %d times in the last %s", count, window)
	if ann["flapping"] == "true" || nt.Instance.Flapping() {
		s += " (flapping)"
	}
	return s + " — first at " + clock(first, now)
}

// resolution stands in for the engine's resolution annotation if a
// notification lacks it.
func resolution(nt alerting.Notification, flapWindow time.Duration) string {
	s := "resolved"
	if start, end := alerting.StartOf(nt), alerting.EndOf(nt); !start.IsZero() && !end.IsZero() {
		s += " after " + durfmt.Format(end.Sub(start), durfmt.Coarse)
	}
	if c, err := strconv.Atoi(nt.Instance.Annotations["fired_count"]); err == nil && c > 0 {
		times := "once"
		if c > 1 {
			times = strconv.Itoa(c) + " times"
		}
		s += "; fired " + times + " in the last " + alerting.WindowPhrase(flapWindow)
	}
	return s
}

// clock renders t as "21:02 UTC", with the date when it is not today's.
func clock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04 UTC")
	}
	return t.Format("Jan 2 15:04 UTC")
}

// formatValue shows up to three decimals: 4.2, 0.951, 1.523.
func formatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(m[k]); v != "" {
			return v
		}
	}
	return ""
}

// escape applies Slack's required escaping of &, < and > to user text, so
// label values cannot form links or mentions (<!channel>).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// link formats <url|text>; characters that would end the link early are
// percent-encoded.
func link(u, text string) string {
	u = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C", " ", "%20").Replace(u)
	return "<" + u + "|" + text + ">"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
