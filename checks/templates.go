package checks

import (
	"fmt"
	"math"
	"strings"
	"text/template"
	"time"
)

// AnnotationFuncs are the functions alert annotation templates may call.
// The loader parses annotations with them, so the alerting engine must
// execute annotations with the same set (use this function).
func AnnotationFuncs() template.FuncMap {
	return template.FuncMap{
		"toUpper": strings.ToUpper,
		"toLower": strings.ToLower,
		// humanize renders a number with an SI prefix: 1.5k, 2.3M, 450m.
		"humanize": func(v float64) string {
			if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Sprintf("%.4g", v)
			}
			prefixes := []struct {
				f float64
				s string
			}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}, {1e-3, "m"}, {1e-6, "u"}}
			for _, p := range prefixes {
				if math.Abs(v) >= p.f {
					return fmt.Sprintf("%.4g%s", v/p.f, p.s)
				}
			}
			return fmt.Sprintf("%.4g", v)
		},
		// humanizeDuration renders seconds as a Go duration: 1.5s, 2m3s.
		"humanizeDuration": func(seconds float64) string {
			if math.IsNaN(seconds) || math.IsInf(seconds, 0) {
				return fmt.Sprintf("%.4g", seconds)
			}
			d := time.Duration(seconds * float64(time.Second))
			switch {
			case d >= time.Second:
				return d.Round(time.Millisecond).String()
			case d >= time.Millisecond:
				return d.Round(time.Microsecond).String()
			}
			return d.String()
		},
		// humanizePercentage renders a ratio as a percentage: 0.953 -> 95.3%.
		"humanizePercentage": func(v float64) string { return fmt.Sprintf("%.4g%%", v*100) },
	}
}
