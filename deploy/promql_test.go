package deploy_test

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// PromQL keywords that look like identifiers but name no metric.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
	// aggregations may put by/without between their name and "("
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"limitk": true, "limit_ratio": true,
}

// Keywords followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// labelValuesRE matches Grafana's label_values(<selector>, <label>) query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values query) selects. It is a tokenizer rather than a parser, which
// is enough for names: string literals, label matchers ({...}), ranges
// ([...]), label lists after by/without/on/ignoring/group_*, Grafana
// variables ($x, ${x}), numbers and durations are skipped, and an
// identifier followed by "(" is a function or aggregation.
func metricNames(expr string) []string {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	set := map[string]bool{}
	s := expr
	skipTo := func(i int, open, close byte) int {
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"', '\'', '`':
				i = skipString(s, i)
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	skipLabelList := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i) + 1
		case c == '{':
			i = skipTo(i, '{', '}')
		case c == '[':
			i = skipTo(i, '[', ']')
		case c == '(' && skipLabelList:
			i = skipTo(i, '(', ')')
			skipLabelList = false
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				i = skipTo(i, '{', '}')
				continue
			}
			for i < len(s) && isIdent(s[i], true) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i], true) || s[i] == '.') {
				i++ // 1.5, 1e3, 5m, 0x1f
			}
		case isIdent(c, false):
			j := i
			for j < len(s) && isIdent(s[j], true) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n') {
				k++
			}
			lw := strings.ToLower(word)
			switch {
			case labelListKeywords[lw]:
				skipLabelList = k < len(s) && s[k] == '('
			case promqlKeywords[lw]:
			case k < len(s) && s[k] == '(':
				// a function or aggregation
			default:
				set[word] = true
			}
			i = j
		default:
			i++
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// skipString returns the index of the closing quote of the literal at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' && q != '`' {
			j++
			continue
		}
		if s[j] == q {
			return j
		}
	}
	return len(s)
}

func isIdent(c byte, inner bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || inner && c >= '0' && c <= '9'
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string
	}{
		{`vantage_check_up{location=~"$location", check="a{b}"}`, "vantage_check_up"},
		{`label_values(vantage_check_up{location=~"$location"}, check)`, "vantage_check_up"},
		{`histogram_quantile(0.9, sum by (check, le) (rate(vantage_check_duration_seconds_bucket{x="y"}[$__rate_interval])))`, "vantage_check_duration_seconds_bucket"},
		{`(a_seconds - time()) / 86400`, "a_seconds"},
		{`process_resident_memory_bytes and on (job, instance) vantage_build_info`, "process_resident_memory_bytes vantage_build_info"},
		{`sum without (node) (x) / ignoring(node) group_left(route) y offset 5m > bool 1e3`, "x y"},
		{`ALERTS{alertstate="firing"} or ALERTS_FOR_STATE`, "ALERTS ALERTS_FOR_STATE"},
		{`rate(m[${__rate_interval}]) * $factor`, "m"},
		{`sum by (le) (rate(z{s='it\'s'}[5m]))`, "z"},
	} {
		if got := strings.Join(metricNames(tc.expr), " "); got != tc.want {
			t.Errorf("metricNames(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
