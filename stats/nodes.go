package stats

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

// Node detection: is one load-balancer node worse than its siblings?
//
// A ratio of p90s (NodeSlowdown) flips with noise at small latencies and
// hovers at the p90 boundary when a node is slow for a tenth of its runs.
// The detector counts runs instead. Within one check and path (a stratum),
// a run is "bad" when it failed, or when it was slower than the siblings'
// p90 by both node_detection.min_excess and the factor min_ratio: slow
// enough to matter to a customer. If a node is no worse than its siblings,
// its share of bad runs is theirs, and how a stratum's bad runs fall
// between the node and its siblings follows the hypergeometric
// distribution. The strata of every check and path that share the node are
// pooled with the Cochran–Mantel–Haenszel statistic (the node is the common
// cause, so the evidence adds up across them), and a one-sided p-value
// says how surprising the node's excess of bad runs is.
//
// Two comparisons are made. The node's runs in the window against its
// siblings' runs in the same window (PRecent): immune to anything that
// hits every node at once, but weak, because the siblings have only twice
// the node's runs, so each bad run is worth a factor of three. And the
// node's runs in the window against its siblings' runs over the longer
// baseline window (P): the siblings' usual rate of bad runs is then known
// from many more runs, and a handful of bad runs on one node is already
// strong evidence. A node is degraded when P reaches the false-alarm level
// and PRecent shows it is worse than its siblings right now as well, so
// that a slowdown of every node (a backend behind all of them, a busy
// host) is not blamed on one.

// minStratumRuns is the least number of runs a node (and each sibling) must
// have in a window to take part in a stratum: fewer says nothing.
const minStratumRuns = 5

// NodeEvidence is the pooled comparison of one node with its siblings over
// one window (and a baseline window).
type NodeEvidence struct {
	Node string
	// Strata are the checks and paths (at least two siblings each) pooled.
	Strata int
	// Runs and Bad are the node's runs and its slow-or-failed runs in the
	// window; SiblingRuns and SiblingBad the same for its siblings, judged
	// by the same thresholds. A run is slow when it took longer than the
	// siblings' p90 plus Excess (and min_ratio times their p90).
	Runs, Bad               int
	SiblingRuns, SiblingBad int
	Excess                  time.Duration
	// Expected is how many of the node's runs would be bad if it were no
	// different from its siblings in the same window.
	Expected float64
	// P is the one-sided p-value of the node's bad runs against its
	// siblings over the baseline window, corrected for the thresholds
	// tried, and Evidence is -log10(P); PRecent is the p-value against its
	// siblings in the same window, at the same threshold. Without a longer
	// baseline, P is PRecent corrected.
	P, PRecent, Evidence float64
	// P90 and SiblingP90 are the node's and its siblings' p90 (seconds) in
	// the stratum where the node's excess of bad runs is largest.
	P90, SiblingP90 float64
	// SlowMedian is the median latency (seconds) of the node's successful
	// slow runs in that stratum, 0 when every slow run failed: what a
	// customer waits when they hit the fault. With a tenth of the runs slow
	// the node's p90 sits at the boundary and says little.
	SlowMedian float64
	// RecentBad are the node's bad runs, at the same threshold, in the
	// newest part of the window (recentSubWindows): whether it is still
	// slow right now.
	RecentBad int
	// Affected are the strata ("check via path") in which the node has at
	// least one bad run more than expected, worst first.
	Affected []string
}

// SlowShare is the share of the node's runs that were slow or failed.
func (e NodeEvidence) SlowShare() float64 {
	if e.Runs == 0 {
		return 0
	}
	return float64(e.Bad) / float64(e.Runs)
}

// SiblingSlowShare is the same share for its siblings.
func (e NodeEvidence) SiblingSlowShare() float64 {
	if e.SiblingRuns == 0 {
		return 0
	}
	return float64(e.SiblingBad) / float64(e.SiblingRuns)
}

// RecentAlpha is the level at which the node must be worse than its
// siblings in the same window, besides P reaching the false-alarm level.
// It is a gate against blaming one node for what hits all of them, not the
// false-alarm control (P is), so it is loose: three bad runs on the node
// and none on its siblings pass it.
const RecentAlpha = 0.05

// Significant reports whether the evidence reaches alpha with at least
// minBad bad runs, one of them just now (RecentBad), the node being worse
// than its siblings in the same window too. The slow run just now keeps a
// node cleared by its silence from being paged again by the ended fault's
// slow runs, still in the window.
func (e NodeEvidence) Significant(alpha float64, minBad int) bool {
	return e.Bad >= minBad && e.RecentBad > 0 && float64(e.Bad) > e.Expected && e.P < alpha && e.PRecent < RecentAlpha
}

// bin is one sketch bin: a latency (seconds) and how many runs fell in it.
type bin struct{ v, n float64 }

func byValue(a, b bin) int { return cmp.Compare(a.v, b.v) }

// nodeRuns is one node's runs in one stratum over a window.
type nodeRuns struct {
	node  string
	runs  int
	fails int
	bins  []bin     // successful runs, ascending by latency
	base  *nodeRuns // the same over the baseline window, or nil
	// recent are the runs of the newest recentSubWindows of the window.
	recent *nodeRuns
}

// recentSubWindows is how much of the window counts as "just now" for
// RecentBad: the current sub-window and the one before it (12–24 s of a
// 2m window).
const recentSubWindows = 2

// bad counts the failed runs and the successful runs slower than t.
func (nr *nodeRuns) bad(t float64) float64 {
	i := sort.Search(len(nr.bins), func(i int) bool { return nr.bins[i].v > t })
	n := float64(nr.fails)
	for _, b := range nr.bins[i:] {
		n += b.n
	}
	return n
}

// medianAbove is the median of the successful runs slower than t, 0
// without any.
func (nr *nodeRuns) medianAbove(t float64) float64 {
	i := sort.Search(len(nr.bins), func(i int) bool { return nr.bins[i].v > t })
	var total float64
	for _, b := range nr.bins[i:] {
		total += b.n
	}
	var seen float64
	for _, b := range nr.bins[i:] {
		seen += b.n
		if seen >= total/2 {
			return b.v
		}
	}
	return 0
}

// quantileOf is the q-quantile of the pooled bins of runs (NaN when empty),
// with the sketches' lower-rank convention.
func quantileOf(q float64, runs []*nodeRuns) float64 {
	var all []bin
	var total float64
	for _, r := range runs {
		all = append(all, r.bins...)
		for _, b := range r.bins {
			total += b.n
		}
	}
	if total == 0 {
		return math.NaN()
	}
	slices.SortFunc(all, byValue)
	rank := q * (total - 1)
	var seen float64
	for _, b := range all {
		seen += b.n
		if seen > rank {
			return b.v
		}
	}
	return all[len(all)-1].v
}

// excessLevels scale node_detection.min_excess into the thresholds the
// test is run at. One threshold cannot serve every fault: at min_excess,
// the scattered slow runs of a busy host count as bad on every node and
// drown a node whose tenth of responses take 1.5 s longer; at ten times
// min_excess that noise is gone, but a node 150 ms slower on every run is
// missed. The strongest level wins, and its p-value is multiplied by the
// number of levels (Bonferroni) so the false-alarm rate still holds.
var excessLevels = [...]float64{1, 3, 10}

// level accumulates one node's strata at one threshold.
type level struct {
	recent, base tally
	bad, sibBad  int
	recentBad    int
	worstExcess  float64
	p90, sp90    float64
	slowMedian   float64
	affected     []affected
}

// tally sums one node's strata for one comparison: its bad runs a, their
// expectation e and hypergeometric variance v, and each stratum's bad runs
// with the node's share of its runs, for the exact tail (pvalue).
type tally struct {
	a, e, v float64
	strata  []stratum
}

type stratum struct {
	m int     // bad runs in the stratum, the node's and its siblings'
	q float64 // the node's share of the stratum's runs
}

// add adds one stratum: the node's a bad of n1 runs, its siblings' c bad
// of n2.
func (t *tally) add(a, n1, c, n2 float64) (e float64) {
	n, m := n1+n2, a+c
	if n == 0 {
		return 0
	}
	e = n1 * m / n
	t.a += a
	t.e += e
	if n > 1 {
		t.v += n1 * n2 * m * (n - m) / (n * n * (n - 1))
	}
	if m > 0 {
		t.strata = append(t.strata, stratum{int(m), n1 / n})
	}
	return e
}

// exactLimit bounds the bad-run count pvalue computes exactly; beyond it
// the counts are large enough for the normal approximation.
const exactLimit = 300

// pvalue is the one-sided p-value of the node having at least its a bad
// runs if it were no different from its siblings: each of a stratum's bad
// runs falls on the node with the node's share of the stratum's runs,
// independently. That is the hypergeometric law drawn with replacement,
// whose tail is a little heavier, so the p-value errs on the safe side.
// The normal approximation (cmh) is far too small in the extreme tail when
// few bad runs are expected: five bad runs where 0.2 are expected read as
// 1e-7 instead of 1e-5, the difference between noise and a page.
func (t tally) pvalue() float64 {
	a := int(math.Round(t.a))
	if a <= 0 {
		return 1
	}
	if a > exactLimit {
		_, p := cmh(t)
		return p
	}
	// dist[k] is P(k of the bad runs so far fell on the node) for k < a;
	// tail collects P(at least a), which more runs cannot undo.
	dist := make([]float64, a)
	dist[0] = 1
	var tail float64
	for _, st := range t.strata {
		q := st.q
		for range st.m {
			tail += dist[a-1] * q
			for k := a - 1; k >= 1; k-- {
				dist[k] = dist[k]*(1-q) + dist[k-1]*q
			}
			dist[0] *= 1 - q
		}
	}
	return min(tail, 1)
}

// pooled accumulates one node's strata for the pooled statistic.
type pooled struct {
	ev     NodeEvidence
	levels [len(excessLevels)]level
}

type affected struct {
	name   string
	excess float64
}

// NodeEvidence compares every node with its siblings over window (and over
// baseline, when it is a longer kept window; 0 for none), pooled per node
// label across every check and path it appears in, with the detector
// settings nd. Nodes without a stratum (no two siblings with enough runs)
// are absent: there is not enough data to say anything.
func (s *Stats) NodeEvidence(window, baseline time.Duration, nd checks.NodeDetection) map[string]NodeEvidence {
	if baseline <= window {
		baseline = 0
	}
	groups := s.groupList()
	minExcess := time.Duration(nd.MinExcess).Seconds()
	minRatio := max(nd.MinRatio, 1)
	acc := map[string]*pooled{}
	rd := s.reader()
	defer rd.close()
	for _, members := range groups {
		strat := s.readStratum(rd, members, window, baseline)
		if len(strat) < 3 {
			continue // a node needs two siblings
		}
		check, path := groupNames(members[0])
		name := check
		if path != "" {
			name += " via " + path
		}
		for i, nr := range strat {
			siblings := make([]*nodeRuns, 0, len(strat)-1)
			for j, o := range strat {
				if j != i {
					siblings = append(siblings, o)
				}
			}
			sp90 := quantileOf(0.9, siblings)
			if math.IsNaN(sp90) {
				continue // every sibling failed every run: nothing to compare latency with
			}
			p := acc[nr.node]
			if p == nil {
				p = &pooled{ev: NodeEvidence{Node: nr.node}}
				acc[nr.node] = p
			}
			n1 := float64(nr.runs)
			p.ev.Strata++
			p.ev.Runs += nr.runs
			for k, f := range excessLevels {
				t := max(sp90+f*minExcess, sp90*minRatio)
				a := nr.bad(t)
				var c, n2, cb, n2b float64
				for _, o := range siblings {
					c += o.bad(t)
					n2 += float64(o.runs)
					if o.base != nil {
						cb += o.base.bad(t)
						n2b += float64(o.base.runs)
					}
				}
				lv := &p.levels[k]
				e := lv.recent.add(a, n1, c, n2)
				if baseline > 0 {
					lv.base.add(a, n1, cb, n2b)
				}
				lv.bad += int(a)
				lv.sibBad += int(c)
				if nr.recent != nil {
					lv.recentBad += int(nr.recent.bad(t))
				}
				if k == 0 {
					p.ev.SiblingRuns += int(n2)
				}
				ex := a - e
				if ex > lv.worstExcess || p.ev.Strata == 1 {
					lv.worstExcess = ex
					lv.p90 = quantileOf(0.9, []*nodeRuns{nr})
					lv.slowMedian = nr.medianAbove(t)
					lv.sp90 = sp90
				}
				if ex >= 1 {
					lv.affected = append(lv.affected, affected{name, ex})
				}
			}
		}
	}
	// The strongest threshold wins; its p-value is multiplied by the
	// number of thresholds tried (Bonferroni).
	k := float64(len(excessLevels))
	out := make(map[string]NodeEvidence, len(acc))
	for node, p := range acc {
		ev := p.ev
		best, bestP := -1, 0.0
		var recentP [len(excessLevels)]float64
		for i := range p.levels {
			lv := &p.levels[i]
			recentP[i] = lv.recent.pvalue()
			pv := recentP[i]
			if baseline > 0 {
				pv = lv.base.pvalue()
			}
			if best < 0 || pv < bestP {
				best, bestP = i, pv
			}
		}
		lv := &p.levels[best]
		ev.P = min(1, bestP*k)
		ev.PRecent = recentP[best]
		ev.Evidence = -math.Log10(max(ev.P, 1e-300))
		ev.Excess = time.Duration(excessLevels[best] * float64(nd.MinExcess))
		ev.Bad, ev.SiblingBad, ev.Expected, ev.RecentBad = lv.bad, lv.sibBad, lv.recent.e, lv.recentBad
		ev.P90, ev.SiblingP90, ev.SlowMedian = lv.p90, lv.sp90, lv.slowMedian
		if math.IsNaN(ev.P90) {
			ev.P90 = 0
		}
		sort.Slice(lv.affected, func(i, j int) bool {
			if lv.affected[i].excess != lv.affected[j].excess {
				return lv.affected[i].excess > lv.affected[j].excess
			}
			return lv.affected[i].name < lv.affected[j].name
		})
		for _, a := range lv.affected {
			ev.Affected = append(ev.Affected, a.name)
		}
		out[node] = ev
	}
	return out
}

// cmh is the one-sided Cochran–Mantel–Haenszel test of the node having more
// bad runs than expected, in the normal approximation with continuity
// correction: sound for large counts only (see pvalue).
func cmh(t tally) (z, p float64) {
	if t.v <= 0 {
		return 0, 1
	}
	d := t.a - t.e
	switch {
	case d > 0.5:
		d -= 0.5
	case d < -0.5:
		d += 0.5
	default:
		d = 0
	}
	z = d / math.Sqrt(t.v)
	return z, 0.5 * math.Erfc(z/math.Sqrt2)
}

// readStratum reads the members of one check and path over window (and
// baseline, when non-zero), one entry per node label (targets of the same
// node, e.g. one address on two ports, are merged), keeping nodes with
// enough runs in the window.
func (s *Stats) readStratum(rd *reader, members []*targetSeries, window, baseline time.Duration) []*nodeRuns {
	byNode := map[string]*nodeRuns{}
	for _, m := range members {
		node := m.node()
		if node == "" {
			return nil // a check without nodes has no siblings
		}
		nr := byNode[node]
		if nr == nil {
			nr = &nodeRuns{node: node, recent: &nodeRuns{node: node}}
			if baseline > 0 {
				nr.base = &nodeRuns{node: node}
			}
			byNode[node] = nr
		}
		rd.readRuns(nr, m.main, window, subWindows)
		rd.readRuns(nr.recent, m.main, window, recentSubWindows)
		if baseline > 0 {
			rd.readRuns(nr.base, m.main, baseline, subWindows)
		}
	}
	out := make([]*nodeRuns, 0, len(byNode))
	for _, nr := range byNode {
		if nr.runs < minStratumRuns {
			continue
		}
		slices.SortFunc(nr.bins, byValue)
		slices.SortFunc(nr.recent.bins, byValue)
		if nr.base != nil {
			slices.SortFunc(nr.base.bins, byValue)
		}
		out = append(out, nr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node < out[j].node })
	return out
}

// readRuns adds the runs of the newest n sub-windows of se's window to nr.
func (rd *reader) readRuns(nr *nodeRuns, se *series, window time.Duration, n int) {
	okRuns, total, ok := rd.mergeLast(se, window, n)
	if !ok || total == 0 {
		return
	}
	nr.runs += int(total)
	nr.fails += int(total - okRuns)
	rd.sk.ForEach(func(v, c float64) bool {
		nr.bins = append(nr.bins, bin{v, c})
		return false
	})
}

// groupList copies the series of every check and path, so they can be read
// without holding s.mu.
func (s *Stats) groupList() [][]*targetSeries {
	s.mu.RLock()
	defer s.mu.RUnlock()
	groups := make([][]*targetSeries, 0, len(s.groups))
	for _, g := range s.groups {
		list := make([]*targetSeries, 0, len(g))
		for _, ts := range g {
			list = append(list, ts)
		}
		groups = append(groups, list)
	}
	return groups
}

func groupNames(ts *targetSeries) (check, path string) {
	t := ts.t.Load()
	if t.Path != nil {
		path = t.Path.Name()
	}
	return t.Check.Name, path
}
