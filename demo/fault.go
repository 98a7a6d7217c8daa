package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s"), so fault bodies stay human-editable with curl.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts a duration string ("250ms") or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: want a string like \"1.5s\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Fault is what goes wrong on a node or domain. The zero Fault means
// "healthy"; setting it clears the target.
type Fault struct {
	// Latency is added before the response headers are written.
	Latency Duration `json:"latency,omitempty"`
	// LatencyRatio is the fraction of responses that get Latency (and
	// Jitter). 0 means 1: every response.
	LatencyRatio float64 `json:"latency_ratio,omitempty"`
	// Jitter adds a uniform random offset in [-Jitter, +Jitter] to the
	// injected latency (never below zero).
	Jitter Duration `json:"jitter,omitempty"`
	// ErrorRatio is the fraction of requests answered 503.
	ErrorRatio float64 `json:"error_ratio,omitempty"`
	// Refuse closes the target's ports: connections are refused (the
	// kernel answers the SYN with an RST, ECONNREFUSED), like a host whose
	// service is down. Connections already open are cut.
	Refuse bool `json:"refuse,omitempty"`
	// Reset accepts connections and resets them at once (RST, ECONNRESET),
	// like a crashing server or a middlebox that drops the connection.
	Reset bool `json:"reset,omitempty"`
	// Stall accepts connections and never answers.
	Stall bool `json:"stall,omitempty"`
	// DNSRemove drops the node's A record from www.shop.test (nodes only).
	DNSRemove bool `json:"dns_remove,omitempty"`
}

// IsZero reports whether f injects nothing.
func (f Fault) IsZero() bool { return f == Fault{} }

// Validate checks ranges that make sense for any target.
func (f Fault) Validate() error {
	var errs []error
	if f.Latency < 0 {
		errs = append(errs, errors.New("latency must not be negative"))
	}
	if f.Jitter < 0 {
		errs = append(errs, errors.New("jitter must not be negative"))
	}
	if f.LatencyRatio < 0 || f.LatencyRatio > 1 {
		errs = append(errs, fmt.Errorf("latency_ratio %g must be between 0 and 1", f.LatencyRatio))
	}
	if f.ErrorRatio < 0 || f.ErrorRatio > 1 {
		errs = append(errs, fmt.Errorf("error_ratio %g must be between 0 and 1", f.ErrorRatio))
	}
	if n := btoi(f.Refuse) + btoi(f.Reset) + btoi(f.Stall); n > 1 {
		errs = append(errs, errors.New("refuse, reset and stall are mutually exclusive"))
	}
	return errors.Join(errs...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// String renders f in ParseFault's syntax (without the target), "clear" when zero.
func (f Fault) String() string {
	var parts []string
	if f.Latency != 0 {
		parts = append(parts, "latency="+time.Duration(f.Latency).String())
	}
	if f.LatencyRatio != 0 && f.LatencyRatio != 1 {
		parts = append(parts, "latency_ratio="+strconv.FormatFloat(f.LatencyRatio, 'g', -1, 64))
	}
	if f.Jitter != 0 {
		parts = append(parts, "jitter="+time.Duration(f.Jitter).String())
	}
	if f.ErrorRatio != 0 {
		parts = append(parts, "error_ratio="+strconv.FormatFloat(f.ErrorRatio, 'g', -1, 64))
	}
	if f.Refuse {
		parts = append(parts, "refuse")
	}
	if f.Reset {
		parts = append(parts, "reset")
	}
	if f.Stall {
		parts = append(parts, "stall")
	}
	if f.DNSRemove {
		parts = append(parts, "dns_remove")
	}
	if len(parts) == 0 {
		return "clear"
	}
	return strings.Join(parts, ",")
}

// ParseFault reads the command-line fault syntax TARGET:SPEC where SPEC is a
// comma-separated list of key=value settings and flags, for example
//
//	lb2:latency=1.5s,latency_ratio=0.2,jitter=200ms
//	lb3:error_ratio=0.5
//	static.shop-cdn.test:refuse
//	static.shop-cdn.test:reset
//	lb1:stall
//	lb1:dns_remove
//	lb2:clear
//
// "clear" yields the zero Fault, which SetFault treats as clearing the
// target. The target is not checked against a shop here; SetFault does that.
func ParseFault(s string) (target string, f Fault, err error) {
	target, spec, ok := strings.Cut(strings.TrimSpace(s), ":")
	target = strings.ToLower(strings.TrimSpace(target))
	if !ok || target == "" {
		return "", Fault{}, fmt.Errorf("fault %q: want TARGET:SPEC, e.g. lb2:latency=1.5s,latency_ratio=0.2", s)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return "", Fault{}, fmt.Errorf("fault %q: empty spec after %q (use %s:clear to clear)", s, target+":", target)
	}
	clear := false
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch key {
		case "latency", "jitter":
			if !hasVal {
				return "", Fault{}, fmt.Errorf("fault %q: %s needs a duration, e.g. %s=500ms", s, key, key)
			}
			d, perr := time.ParseDuration(val)
			if perr != nil {
				return "", Fault{}, fmt.Errorf("fault %q: %s: invalid duration %q", s, key, val)
			}
			if key == "latency" {
				f.Latency = Duration(d)
			} else {
				f.Jitter = Duration(d)
			}
		case "latency_ratio", "error_ratio":
			if !hasVal {
				return "", Fault{}, fmt.Errorf("fault %q: %s needs a number between 0 and 1", s, key)
			}
			v, perr := strconv.ParseFloat(val, 64)
			if perr != nil {
				return "", Fault{}, fmt.Errorf("fault %q: %s: invalid number %q", s, key, val)
			}
			if key == "latency_ratio" {
				f.LatencyRatio = v
			} else {
				f.ErrorRatio = v
			}
		case "refuse", "reset", "stall", "dns_remove", "clear":
			on := true
			if hasVal {
				b, perr := strconv.ParseBool(val)
				if perr != nil {
					return "", Fault{}, fmt.Errorf("fault %q: %s: invalid boolean %q", s, key, val)
				}
				on = b
			}
			switch key {
			case "refuse":
				f.Refuse = on
			case "reset":
				f.Reset = on
			case "stall":
				f.Stall = on
			case "dns_remove":
				f.DNSRemove = on
			case "clear":
				clear = on
			}
		default:
			return "", Fault{}, fmt.Errorf("fault %q: unknown setting %q (known: latency, latency_ratio, jitter, error_ratio, refuse, reset, stall, dns_remove, clear)", s, key)
		}
	}
	if clear {
		if !f.IsZero() {
			return "", Fault{}, fmt.Errorf("fault %q: clear cannot be combined with other settings", s)
		}
		return target, Fault{}, nil
	}
	if f.IsZero() {
		return "", Fault{}, fmt.Errorf("fault %q: no settings (use %s:clear to clear)", s, target)
	}
	if err := f.Validate(); err != nil {
		return "", Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	return target, f, nil
}
