package stats

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkNodeDetectorSimulated measures the node detector on the
// simulated demo shop (shopSim): false degraded calls per node per week on
// a healthy shop whose runs are slowed at random by 6 % (a busy host), and
// the time to call lb2 degraded when 10 % of its responses take 1.5 s
// longer, over 20 trials. lookFactor was chosen from these figures; the
// detection benchmark (make bench-detection) measures the real daemon.
func BenchmarkNodeDetectorSimulated(b *testing.B) {
	for b.Loop() {
		sim := newShopSim(b, 99, 2*time.Minute, time.Hour)
		sim.noise = 0.06
		fires := 0
		prev := map[string]bool{}
		sim.run(7*24*time.Hour, func(_ time.Duration, v map[string]NodeVerdict) {
			for n, vd := range v {
				if vd.Degraded && !prev[n] {
					fires++
				}
				prev[n] = vd.Degraded
			}
		})
		b.ReportMetric(float64(fires)/3, "false-fires/node/week")

		var detect []float64
		for seed := range uint64(20) {
			sim := newShopSim(b, seed, 2*time.Minute, time.Hour)
			sim.noise = 0.02
			sim.run(30*time.Minute, nil)
			sim.fault = 0.1
			start, at := sim.elapsed, time.Duration(-1)
			sim.run(5*time.Minute, func(now time.Duration, v map[string]NodeVerdict) {
				if at < 0 && v["lb2"].Degraded {
					at = now - start
				}
			})
			if at < 0 {
				at = 5 * time.Minute // not detected: counted as the whole fault
			}
			detect = append(detect, at.Seconds())
		}
		slices.Sort(detect)
		b.ReportMetric(detect[len(detect)/2], "detect-10%-median-s")
		b.ReportMetric(detect[len(detect)-1], "detect-10%-worst-s")
	}
}
