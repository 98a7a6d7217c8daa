package checks

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

var (
	checkNameRE   = regexp.MustCompile(`^[a-z0-9_-]+$`)
	pathNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	labelNameRE   = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	templateRefRE = regexp.MustCompile(`\{\{.*?\}\}`)
)

// ReservedLabel reports whether a label name is one vantage sets itself,
// so user labels must not use it.
func ReservedLabel(name string) bool {
	switch name {
	case "check", "type", "path", "node", "node_address", "location", "step", "phase", "window",
		"quantile", "domain", "result", "alertname", "severity", "le":
		return true
	}
	return strings.HasPrefix(name, "__")
}

// q quotes v for a message, or hides it when it came from the environment.
func (l *loader) q(v string, p Pos, path ...any) string {
	if l.secretPos[l.at(p, path...)] {
		return Placeholder
	}
	return strconv.Quote(v)
}

// firstDef says where a duplicate's first occurrence is.
func firstDef(first, dup Pos) string {
	if first.File == dup.File {
		return fmt.Sprintf("first defined at line %d", first.Line)
	}
	return fmt.Sprintf("first defined at %s:%d", first.File, first.Line)
}

// unique records name at p, reporting a duplicate of an earlier one.
func (l *loader) unique(seen map[string]Pos, what, name string, p Pos) {
	if first, ok := seen[name]; ok {
		l.errAt(p, "duplicate %s %q (%s)", what, name, firstDef(first, p))
		return
	}
	seen[name] = p
}

// finish applies the defaults that depend on other parts of the config,
// reads *_file secrets and validates everything.
func (l *loader) finish(cfg *Config) {
	l.finishGlobal(&cfg.Global)
	l.finishPaths(cfg)
	nodeNames, nodeNamesAt := l.finishNodeNames(cfg.Global.Pos, cfg.Global.NodeNames)
	cfg.Global.NodeNames = nodeNames
	names := map[string]Pos{}
	for i := range cfg.Checks {
		l.finishCheck(cfg, &cfg.Checks[i], names)
		l.finishCheckNodeNames(&cfg.Checks[i], nodeNames, nodeNamesAt)
	}
	notifiers := map[string]Pos{}
	for i := range cfg.Notifiers {
		l.finishNotifier(&cfg.Notifiers[i], notifiers)
	}
	labels := map[string]bool{"check": true, "path": true, "node": true, "domain": true, "location": true}
	for k := range cfg.Global.Labels {
		labels[k] = true
	}
	for _, c := range cfg.Checks {
		for k := range c.Labels {
			labels[k] = true
		}
	}
	alerts := map[string]Pos{}
	for i := range cfg.Alerts {
		l.finishAlert(cfg, &cfg.Alerts[i], alerts, notifiers, labels)
	}
}

func (l *loader) finishGlobal(g *Global) {
	p := g.Pos
	if g.Interval <= 0 {
		l.errAt(l.at(p, "interval"), "interval must be > 0")
	}
	switch {
	case g.Timeout <= 0:
		l.errAt(l.at(p, "timeout"), "timeout must be > 0")
	case g.Interval > 0 && g.Timeout >= g.Interval:
		if l.has(p, "timeout") {
			l.errAt(l.at(p, "timeout"), "timeout %s must be less than interval %s", g.Timeout, g.Interval)
		} else {
			g.Timeout = g.Interval * 4 / 5
		}
	}
	if g.DownAfter < 1 {
		l.errAt(l.at(p, "down_after"), "down_after must be >= 1")
	}
	if g.UpAfter < 1 {
		l.errAt(l.at(p, "up_after"), "up_after must be >= 1")
	}
	if len(g.QuantileWindows) == 0 {
		l.errAt(l.at(p, "quantile_windows"), "quantile_windows must not be empty")
	}
	for i, w := range g.QuantileWindows {
		if w <= 0 {
			l.errAt(l.at(p, "quantile_windows", i), "quantile window must be > 0")
		}
	}
	if g.MaxDomainsPerCheck < 1 {
		l.errAt(l.at(p, "max_domains_per_check"), "max_domains_per_check must be >= 1")
	}
	if g.FlapWindow <= 0 {
		l.errAt(l.at(p, "flap_window"), "flap_window must be > 0")
	}
	l.finishNodeDetection(p, &g.NodeDetection)
	switch g.Metrics.Histograms {
	case HistogramsClassicAndNative, HistogramsNative, HistogramsClassic:
	default:
		l.errAt(l.at(p, "metrics", "histograms"), "metrics.histograms must be %s, %s or %s, not %s",
			HistogramsClassicAndNative, HistogramsNative, HistogramsClassic, l.quote(l.at(p, "metrics", "histograms"), g.Metrics.Histograms))
	}
	l.validateLabels(p, "labels", g.Labels)
}

// finishNodeDetection checks the detector's settings; the bounds keep it
// meaningful (a zero excess would count jitter as slowness; a rate of more
// than one page an hour is no significance level at all).
func (l *loader) finishNodeDetection(gp Pos, nd *NodeDetection) {
	at := func(key string) Pos { return l.at(gp, "node_detection", key) }
	if nd.MinExcess <= 0 || nd.MinExcess > model.Duration(time.Hour) {
		l.errAt(at("min_excess"), "node_detection.min_excess must be > 0 and <= 1h")
	}
	if !(nd.MinRatio >= 1 && nd.MinRatio <= 100) {
		l.errAt(at("min_ratio"), "node_detection.min_ratio must be between 1 and 100")
	}
	if !(nd.FalsePagesPerWeek > 0 && nd.FalsePagesPerWeek <= 168) {
		l.errAt(at("false_pages_per_week"), "node_detection.false_pages_per_week must be > 0 and <= 168 (one an hour)")
	}
	if nd.MinSlowRuns < 1 || nd.MinSlowRuns > 10000 {
		l.errAt(at("min_slow_runs"), "node_detection.min_slow_runs must be between 1 and 10000")
	}
	if nd.Baseline <= 0 || nd.Baseline > model.Duration(24*time.Hour) {
		l.errAt(at("baseline"), "node_detection.baseline must be > 0 and <= 24h")
	}
}

func (l *loader) validateLabels(p Pos, key string, m map[string]string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case !labelNameRE.MatchString(k):
			l.errAt(l.keyAt(p, key, k), "invalid label name %q", k)
		case ReservedLabel(k):
			l.errAt(l.keyAt(p, key, k), "label name %q is reserved", k)
		}
	}
}

func (l *loader) finishPaths(cfg *Config) {
	if len(cfg.Paths) == 0 {
		cfg.Paths = []Path{{Name: DefaultPathName, Pos: Pos{File: cfg.File}}}
		return
	}
	seen := map[string]Pos{}
	for i := range cfg.Paths {
		pa := &cfg.Paths[i]
		p := pa.Pos
		if p.Line == 0 {
			continue // not a mapping; already reported
		}
		switch {
		case pa.Name == "":
			l.errAt(l.at(p, "name"), "path has no name")
		case !pathNameRE.MatchString(pa.Name):
			l.errAt(l.at(p, "name"), "invalid path name %q (must match %s)", pa.Name, pathNameRE)
		default:
			l.unique(seen, "path name", pa.Name, l.at(p, "name"))
		}
		if pa.SourceIP != "" {
			if _, err := netip.ParseAddr(pa.SourceIP); err != nil {
				l.errAt(l.at(p, "source_ip"), "invalid source_ip %s (want an IP address)", l.q(pa.SourceIP, p, "source_ip"))
			}
		}
		if pa.Proxy != "" {
			u, err := url.Parse(pa.Proxy)
			if err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok {
					// Proxy-Authorization carries base64(user:password).
					l.secrets.AddBasicAuth(u.User.Username(), pw)
				}
			}
			if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "socks5", "socks5h"}, u.Scheme) {
				// The URL may carry credentials, so it is not echoed.
				l.errAt(l.at(p, "proxy"), "invalid proxy URL (want http://, https:// or socks5:// with a host)")
			}
		}
		if pa.Resolver != "" {
			if r, ok := normalizeHostPort(pa.Resolver, "53"); ok {
				pa.Resolver = r
			} else {
				l.errAt(l.at(p, "resolver"), "invalid resolver %s (want an IP or host:port)", l.q(pa.Resolver, p, "resolver"))
			}
		}
		l.finishTLS(pa.TLS, p)
	}
}

// normalizeHostPort accepts host:port, or a bare IP to which defPort is added.
func normalizeHostPort(s, defPort string) (string, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		// netip accepts any zone, "::%]0" too, which no host:port holds.
		hp := net.JoinHostPort(ip.String(), defPort)
		return hp, validHostPort(hp)
	}
	if !validHostPort(s) {
		return "", false
	}
	return s, true
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// splitIPPort parses "10.0.0.11", "10.0.0.13:8443", "::1" or "[::1]:8443".
func splitIPPort(s string) (netip.Addr, uint16, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip, 0, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return ap.Addr(), ap.Port(), true
	}
	return netip.Addr{}, 0, false
}

// finishTLS makes the TLS file paths relative to the config file that holds
// them; a missing file is only a warning since it may appear before use.
func (l *loader) finishTLS(t *config.TLSConfig, p Pos) {
	if t == nil {
		return
	}
	t.SetDirectory(filepath.Dir(p.File))
	for _, f := range []struct{ key, val string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.val == "" {
			continue
		}
		if _, err := os.Stat(f.val); err != nil {
			l.warnAt(l.at(p, "tls", f.key), "tls %s %q is not readable: %s", f.key, f.val, fsReason(err))
		}
	}
}

// readSecretFile loads a *_file key into its sibling field.
func (l *loader) readSecretFile(p Pos, base []any, field string, dst *string, fileKey, file string) {
	fieldPath := append(slices.Clone(base), field)
	filePath := append(slices.Clone(base), fileKey)
	if file == "" {
		return
	}
	if n, _, _ := l.walk(p, fieldPath...); n != nil || *dst != "" {
		l.errAt(l.keyAt(p, filePath...), "%s and %s are mutually exclusive", field, fileKey)
		return
	}
	full := file
	if !filepath.IsAbs(full) {
		full = filepath.Join(filepath.Dir(p.File), file)
	}
	data, err := readBounded(full, l.lim.MaxFileSize)
	switch {
	case errors.Is(err, errTooLarge):
		l.errAt(l.at(p, filePath...), "%s", l.tooLargeMsg(fmt.Sprintf("%s %q", fileKey, file)))
		return
	case err != nil:
		l.errAt(l.at(p, filePath...), "cannot read %s %q: %s", fileKey, file, fsReason(err))
		return
	}
	// A secret file usually ends in a newline that is not part of the
	// secret; a body is sent as written.
	s := string(data)
	if field != "body" {
		s = strings.TrimRight(s, "\r\n")
	}
	*dst = s
	l.secrets.Add(s)
}

// warnShortSecret: values shorter than MinSecretLen are not redacted, as
// replacing them would mangle unrelated text.
func (l *loader) warnShortSecret(at Pos, field string) {
	l.warnAt(at, "%s is shorter than %d characters, so it is not redacted from logs, errors, stored runs and the API; use a longer secret", field, MinSecretLen)
}

func validURL(raw string) bool {
	// Template references ({{ .token }}) are filled per run; check the rest.
	u, err := url.Parse(templateRefRE.ReplaceAllString(raw, "x"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (l *loader) checkURL(raw string, p Pos, path ...any) {
	if !validURL(raw) {
		l.errAt(l.at(p, path...), "invalid url %s (want an absolute http or https URL)", l.q(raw, p, path...))
	}
}

func (l *loader) checkTemplate(s string, p Pos, path ...any) {
	if !strings.Contains(s, "{{") {
		return
	}
	if _, err := template.New("").Option("missingkey=error").Parse(s); err != nil {
		l.errAt(l.at(p, path...), "invalid template: line %s", strings.TrimPrefix(err.Error(), "template: :"))
	}
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func (l *loader) finishCheck(cfg *Config, c *Check, names map[string]Pos) {
	p := c.Pos
	if p.Line == 0 {
		return // not a mapping; already reported
	}
	g := &cfg.Global
	switch {
	case c.Name == "":
		l.errAt(l.at(p, "name"), "check has no name")
	case !checkNameRE.MatchString(c.Name):
		l.errAt(l.at(p, "name"), "invalid check name %s (must match ^[a-z0-9_-]+$)", l.q(c.Name, p, "name"))
	default:
		l.unique(names, "check name", c.Name, l.at(p, "name"))
	}

	typ := c.Type
	kind := l.reg.Kind(typ)
	switch {
	case kind != nil:
	case typ == "":
		l.errAt(l.at(p, "type"), "check has no type (want %s)", orList(l.reg.KindTypes()))
	default:
		l.errAt(l.at(p, "type"), "unknown check type %s (want %s)", l.q(typ, p, "type"), orList(l.reg.KindTypes()))
	}
	if kind != nil {
		for _, k := range slices.Sorted(maps.Keys(l.kindKeys)) {
			if l.has(p, k) && !slices.Contains(l.kindKeys[k], typ) {
				l.errAt(l.keyAt(p, k), "key %q is not valid for a %s check", k, typ)
			}
		}
	}

	// Interval and timeout: inherited from global; an inherited timeout is
	// capped below a shorter check interval, an explicit one must fit.
	if l.has(p, "interval") {
		if c.Interval <= 0 {
			l.errAt(l.at(p, "interval"), "interval must be > 0")
		}
	} else {
		c.Interval = g.Interval
	}
	if l.has(p, "timeout") {
		switch {
		case c.Timeout <= 0:
			l.errAt(l.at(p, "timeout"), "timeout must be > 0")
		case c.Interval > 0 && c.Timeout >= c.Interval:
			l.errAt(l.at(p, "timeout"), "timeout %s must be less than interval %s", c.Timeout, c.Interval)
		}
	} else {
		c.Timeout = g.Timeout
		if c.Interval > 0 && c.Timeout >= c.Interval {
			c.Timeout = c.Interval * 4 / 5
		}
	}

	// Paths: default every configured path.
	if !l.has(p, "paths") {
		c.Paths = make([]string, len(cfg.Paths))
		for i, pa := range cfg.Paths {
			c.Paths[i] = pa.Name
		}
	} else {
		if len(c.Paths) == 0 {
			l.errAt(l.at(p, "paths"), "paths must not be empty")
		}
		listed := map[string]Pos{}
		for i, name := range c.Paths {
			ip := l.at(p, "paths", i)
			if !slices.ContainsFunc(cfg.Paths, func(pa Path) bool { return pa.Name == name }) {
				l.errAt(ip, "unknown path %q", name)
				continue
			}
			l.unique(listed, "path", name, ip)
		}
	}

	l.validateLabels(p, "labels", c.Labels)
	if c.Nodes != nil {
		l.finishNodes(c.Nodes)
	}
	l.finishTLS(c.TLS, p)
	if c.Expect != nil {
		l.finishExpect(c.Expect)
	}

	if kind != nil && c.Spec != nil {
		kind.Finish(&Validator{l}, c)
	}
}

func (l *loader) finishNodes(n *Nodes) {
	p := n.Pos
	if p.Line == 0 {
		return // not a mapping; already reported
	}
	hasR, hasA := l.has(p, "resolve"), l.has(p, "addresses")
	switch {
	case hasR && hasA:
		l.errAt(p, "nodes: resolve and addresses are mutually exclusive")
	case !hasR && !hasA:
		l.errAt(p, "nodes needs resolve: all or addresses")
	}
	if hasR && n.Resolve != "all" {
		l.errAt(l.at(p, "resolve"), "invalid resolve %q (want all)", n.Resolve)
	}
	if hasA && len(n.Addresses) == 0 {
		l.errAt(l.at(p, "addresses"), "addresses must not be empty")
	}
	seen := map[string]Pos{}
	for i := range n.Addresses {
		a := &n.Addresses[i]
		if a.Pos.Line == 0 {
			continue
		}
		ap := l.at(a.Pos, "address")
		if a.Address == "" {
			l.errAt(a.Pos, "node needs an address")
			continue
		}
		if _, _, ok := splitIPPort(a.Address); !ok {
			l.errAt(ap, "invalid node address %s (want an IP or IP:port)", l.q(a.Address, a.Pos, "address"))
			continue
		}
		if l.has(a.Pos, "name") && !l.checkNodeName(a.Name, a.Pos, l.at(a.Pos, "name"), "name") {
			continue
		}
		l.unique(seen, "node", a.Label(), a.Pos)
	}
}

// finishExpect validates the shared keys of an expect mapping; the kind
// validates its own (Expect.Spec).
func (l *loader) finishExpect(e *Expect) {
	if e.TLSMinDays < 0 {
		l.errAt(l.at(e.Pos, "tls_min_days"), "tls_min_days must be >= 0")
	}
}

func (l *loader) finishNotifier(n *Notifier, names map[string]Pos) {
	p := n.Pos
	if p.Line == 0 {
		return
	}
	switch {
	case n.Name == "":
		l.errAt(l.at(p, "name"), "notifier has no name")
	default:
		l.unique(names, "notifier name", n.Name, l.at(p, "name"))
	}
	kind := l.reg.notifier(n.Type)
	switch {
	case kind != nil:
	case n.Type == "":
		l.errAt(l.at(p, "type"), "notifier has no type (want %s)", orList(l.reg.NotifierTypes()))
	default:
		l.errAt(l.at(p, "type"), "unknown notifier type %q (want %s)", n.Type, orList(l.reg.NotifierTypes()))
	}
	before := len(l.errs)
	l.readSecretFile(p, nil, "url", &n.URL, "url_file", n.URLFile)
	switch {
	case len(l.errs) > before:
	case n.URL == "":
		l.errAt(p, "notifier needs url")
	case !validURL(n.URL):
		// Webhook URLs often embed tokens, so the value is not echoed.
		key := "url"
		if n.URLFile != "" {
			key = "url_file"
		}
		l.errAt(l.at(p, key), "invalid notifier url (want an absolute http or https URL)")
	}
	// Webhook URLs carry their token in the path or query: the token-like
	// parts are redacted wherever they appear, escaped or not.
	l.secrets.AddURL(n.URL)
	n.HTTPConfig.SetDirectory(filepath.Dir(p.File))
	if err := n.HTTPConfig.Validate(); err != nil {
		l.errAt(l.at(p, "http_config"), "invalid http_config: %v", err)
	}
	l.secrets.AddHTTPConfig(&n.HTTPConfig)
	for _, d := range []struct {
		key string
		v   model.Duration
	}{{"timeout", n.Timeout}, {"max_age", n.MaxAge}, {"resend_interval", n.ResendInterval}} {
		if d.v <= 0 {
			l.errAt(l.at(p, d.key), "%s must be > 0", d.key)
		}
	}
	if kind != nil {
		kind.Finish(&Validator{l}, n)
	}
}

func (l *loader) finishAlert(cfg *Config, a *Alert, names, notifiers map[string]Pos, labels map[string]bool) {
	p := a.Pos
	if p.Line == 0 {
		return
	}
	if a.Name == "" {
		l.errAt(l.at(p, "name"), "alert has no name")
	} else {
		l.unique(names, "alert name", a.Name, l.at(p, "name"))
	}
	if a.When == "" {
		l.errAt(l.at(p, "when"), `alert has no when (e.g. "p99 > 1.5s")`)
	} else if e, err := ParseExpr(a.When); err != nil {
		l.errAt(l.at(p, "when"), "%v", err)
	} else {
		a.Expr = e
	}
	if !l.has(p, "window") {
		a.Window = model.Duration(5 * time.Minute)
		if len(cfg.Global.QuantileWindows) > 0 {
			a.Window = slices.Min(cfg.Global.QuantileWindows)
		}
	} else if a.Window <= 0 {
		l.errAt(l.at(p, "window"), "window must be > 0")
	}
	for i, pat := range a.Checks {
		if _, err := path.Match(pat, ""); err != nil {
			l.errAt(l.at(p, "checks", i), "invalid checks pattern %q: %v", pat, err)
			continue
		}
		if !slices.ContainsFunc(cfg.Checks, func(c Check) bool { ok, _ := path.Match(pat, c.Name); return ok }) {
			l.warnAt(l.at(p, "checks", i), "checks pattern %q matches no check", pat)
		}
	}
	for i, b := range a.By {
		if !labels[b] {
			l.errAt(l.at(p, "by", i), "unknown label %q in by (want check, path, node, domain, location or a configured label)", b)
		}
	}
	l.validateLabels(p, "labels", a.Labels)
	for _, k := range slices.Sorted(maps.Keys(a.Annotations)) {
		t, err := template.New(k).Funcs(AnnotationFuncs()).Parse(a.Annotations[k])
		if err == nil {
			err = boundedAnnotation(t)
		}
		if err != nil {
			l.errAt(l.at(p, "annotations", k), "invalid annotation template %q: %s", k, strings.TrimPrefix(err.Error(), "template: "))
		}
	}
	if !l.has(p, "notify") {
		a.Notify = make([]string, len(cfg.Notifiers))
		for i, n := range cfg.Notifiers {
			a.Notify[i] = n.Name
		}
	}
	for i, n := range a.Notify {
		if _, ok := notifiers[n]; !ok {
			l.errAt(l.at(p, "notify", i), "unknown notifier %q", n)
		}
	}
	if a.Severity == "" {
		a.Severity = DefaultAlert.Severity
	}
}
