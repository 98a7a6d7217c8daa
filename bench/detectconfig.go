package main

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// copyConfig is one shop copy's generated demo config and the prefix its
// names get in the combined config.
type copyConfig struct {
	prefix string
	yaml   string
}

// mergeConfigs combines the demo configs of several shop copies into one
// config for one daemon. Each copy's paths and checks are renamed
// PREFIX-NAME and each check runs only over its own copy's paths (they
// carry the copy's resolver and CA). Node names in node_names maps get the
// prefix too, so alerts grouped by node never merge copies. Global
// settings and notifiers come from the first copy; an alert rule is kept
// once, with the check patterns of every copy that has it, each prefixed.
// Nothing depends on the rules' measures: whatever the generator writes
// is kept.
func mergeConfigs(parts []copyConfig) (string, error) {
	if len(parts) == 0 {
		return "", fmt.Errorf("no shop configs to merge")
	}
	var (
		global    map[string]any
		paths     []any
		checkList []any
		notifiers []any
		alertList []map[string]any
		alertPats = map[string][]string{} // rule name → patterns; nil: every check
		others    = map[string]any{}
		otherKeys []string
		seenNotif = map[string]bool{}
	)
	for i, p := range parts {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(p.yaml), &doc); err != nil {
			return "", fmt.Errorf("copy %s: %w", p.prefix, err)
		}
		pre := p.prefix + "-"
		prefixNodeNames(doc, pre)
		if g, ok := doc["global"].(map[string]any); ok {
			if global == nil {
				global = g
			} else if nn, ok := g["node_names"].(map[string]any); ok {
				all, _ := global["node_names"].(map[string]any)
				if all == nil {
					all = map[string]any{}
				}
				for k, v := range nn {
					all[k] = v
				}
				global["node_names"] = all
			}
		}
		var myPaths []any
		for _, x := range list(doc["paths"]) {
			m, ok := x.(map[string]any)
			if !ok {
				return "", fmt.Errorf("copy %s: a path is not a mapping", p.prefix)
			}
			m["name"] = pre + fmt.Sprint(m["name"])
			myPaths = append(myPaths, m["name"])
			paths = append(paths, m)
		}
		if len(myPaths) == 0 {
			return "", fmt.Errorf("copy %s: the config has no paths, so its checks would use every copy's resolver", p.prefix)
		}
		for _, x := range list(doc["checks"]) {
			m, ok := x.(map[string]any)
			if !ok {
				return "", fmt.Errorf("copy %s: a check is not a mapping", p.prefix)
			}
			m["name"] = pre + fmt.Sprint(m["name"])
			if ps := list(m["paths"]); len(ps) > 0 {
				for j := range ps {
					ps[j] = pre + fmt.Sprint(ps[j])
				}
				m["paths"] = ps
			} else {
				m["paths"] = slices.Clone(myPaths)
			}
			checkList = append(checkList, m)
		}
		for _, x := range list(doc["notifiers"]) {
			m, ok := x.(map[string]any)
			if !ok {
				return "", fmt.Errorf("copy %s: a notifier is not a mapping", p.prefix)
			}
			if name := fmt.Sprint(m["name"]); !seenNotif[name] {
				seenNotif[name] = true
				notifiers = append(notifiers, m)
			}
		}
		for _, x := range list(doc["alerts"]) {
			m, ok := x.(map[string]any)
			if !ok {
				return "", fmt.Errorf("copy %s: an alert is not a mapping", p.prefix)
			}
			name := fmt.Sprint(m["name"])
			pats := []string{pre + "*"} // no checks: key means every check of the copy
			if cs := list(m["checks"]); len(cs) > 0 {
				pats = pats[:0]
				for _, c := range cs {
					pats = append(pats, pre+fmt.Sprint(c))
				}
			}
			if _, seen := alertPats[name]; !seen {
				alertList = append(alertList, m)
			}
			alertPats[name] = append(alertPats[name], pats...)
		}
		if i == 0 {
			for k, v := range doc {
				switch k {
				case "global", "paths", "checks", "notifiers", "alerts":
				default:
					others[k] = v
					otherKeys = append(otherKeys, k)
				}
			}
		}
	}
	for _, m := range alertList {
		name := fmt.Sprint(m["name"])
		pats := alertPats[name]
		everyCheck := true
		for _, p := range parts {
			if !slices.Contains(pats, p.prefix+"-*") {
				everyCheck = false
			}
		}
		if everyCheck {
			delete(m, "checks")
		} else {
			m["checks"] = pats
		}
	}

	var b strings.Builder
	b.WriteString("# vantage configuration for the detection benchmark: several demo shop copies (generated).\n")
	emit := func(k string, v any) error {
		if v == nil {
			return nil
		}
		out, err := yaml.Marshal(map[string]any{k: v})
		if err != nil {
			return err
		}
		b.Write(out)
		b.WriteString("\n")
		return nil
	}
	slices.Sort(otherKeys)
	type item struct {
		k string
		v any
	}
	items := []item{{"global", global}, {"paths", paths}, {"checks", checkList}}
	if len(notifiers) > 0 {
		items = append(items, item{"notifiers", notifiers})
	}
	if len(alertList) > 0 {
		items = append(items, item{"alerts", alertList})
	}
	for _, k := range otherKeys {
		items = append(items, item{k, others[k]})
	}
	for _, it := range items {
		if err := emit(it.k, it.v); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// prefixNodeNames gives every name in a node_names map (address → name)
// anywhere in v the prefix, unless it already has it.
func prefixNodeNames(v any, pre string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if nn, ok := val.(map[string]any); ok && k == "node_names" {
				for addr, name := range nn {
					if s := fmt.Sprint(name); !strings.HasPrefix(s, pre) {
						nn[addr] = pre + s
					}
				}
				continue
			}
			prefixNodeNames(val, pre)
		}
	case []any:
		for _, e := range x {
			prefixNodeNames(e, pre)
		}
	}
}
