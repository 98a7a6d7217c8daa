package checks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Limits bound what one configuration may cost to load and run, so a
// runaway generator or a hostile file is rejected with a clear error
// instead of taking minutes and gigabytes (or the daemon) down with it.
// A zero field takes its value from DefaultLimits.
type Limits struct {
	// MaxFileSize bounds each file: the main one and every include.
	MaxFileSize ByteSize
	// MaxChecks bounds the checks of the main file and its includes together.
	MaxChecks int
	// MaxTargets bounds checks × paths × listed nodes (a `resolve: all`
	// check counts one node per path: its nodes are only known at run time).
	MaxTargets int
	// MaxYAMLNodes bounds how many YAML nodes one file amounts to once every
	// alias is followed: a "billion laughs" file of a few lines would
	// otherwise be walked for minutes.
	MaxYAMLNodes int
	// MaxMemory is the memory the daemon may use; a config whose targets
	// would need more (TargetMemory) is refused instead of ending in an
	// out-of-memory kill. Zero: no memory check (unlike the other fields,
	// it has no default: only the command knows the machine).
	MaxMemory ByteSize
	// MaxMemorySource says where MaxMemory came from, for the error
	// ("GOMEMLIMIT", "the cgroup's memory.max", …).
	MaxMemorySource string
	// Shards is the N of --shard=I/N: the daemon runs about 1/N of the
	// targets, and MaxMemory bounds that share. 0 or 1: all.
	Shards int
}

// DefaultLimits are far above any real configuration: 50,000 checks at
// about 20 YAML nodes each (more with merge keys) stay well below the node
// bound, and a 16MiB file holds about 100,000 short checks.
var DefaultLimits = Limits{
	MaxFileSize:  16 << 20,
	MaxChecks:    50_000,
	MaxTargets:   100_000,
	MaxYAMLNodes: 5_000_000,
}

// Flag names that raise each limit; error messages name them.
const (
	FlagMaxFileSize  = "config.max-file-size"
	FlagMaxChecks    = "config.max-checks"
	FlagMaxTargets   = "config.max-targets"
	FlagMaxYAMLNodes = "config.max-yaml-nodes"
	FlagMaxMemory    = "config.max-memory"
)

// Memory a target costs, measured at 100,000 plain-HTTP targets (see
// BENCHMARKS.md, docs/deployment.md): the live heap of the target's config,
// schedule, series and statistics with two windows, and the headroom
// Go's garbage collector needs to keep up without spending the CPU in
// collections. Each further window of statistics (quantile window, alert
// window) adds a ring of sub-window sketches, and each step of a journey
// its own statistics.
const (
	targetBaseMemory   = 5 << 10
	seriesWindowMemory = 1 << 10
	// baseMemory is the daemon without targets (runtime, SQLite, buffers).
	baseMemory = 64 << 20
)

// TargetMemory estimates the memory a daemon running 1/shards of cfg's
// targets needs (see Limits.MaxMemory); resolved nodes count one per path,
// as for MaxTargets.
func TargetMemory(cfg *Config, shards int) ByteSize {
	return ByteSize(baseMemory + targetsMemory(cfg, len(cfg.Checks))/int64(max(shards, 1)))
}

// targetsMemory is the memory of the first n checks' targets.
func targetsMemory(cfg *Config, n int) int64 {
	wins := map[model.Duration]bool{}
	for _, w := range cfg.Global.QuantileWindows {
		wins[w] = true
	}
	for _, a := range cfg.Alerts {
		wins[a.Window] = true
		if IsDetectorMeasure(a.Expr.Measure) {
			wins[cfg.Global.NodeDetection.Baseline] = true
		}
	}
	var total int64
	for i := range n {
		c := &cfg.Checks[i]
		series := int64(1)
		if tr := c.Traits(); tr.Steps > 1 || tr.StepSeries {
			series += int64(tr.Steps)
		}
		total += int64(targetCount(c)) * (targetBaseMemory + series*int64(len(wins))*seriesWindowMemory)
	}
	return total
}

// targetCount is c's targets as far as the config tells.
func targetCount(c *Check) int {
	nodes := 1
	if c.Nodes != nil && c.Nodes.Resolve == "" && len(c.Nodes.Addresses) > 0 {
		nodes = len(c.Nodes.Addresses)
	}
	return max(len(c.Paths), 1) * nodes
}

func (lim Limits) orDefaults() Limits {
	if lim.MaxFileSize <= 0 {
		lim.MaxFileSize = DefaultLimits.MaxFileSize
	}
	if lim.MaxChecks <= 0 {
		lim.MaxChecks = DefaultLimits.MaxChecks
	}
	if lim.MaxTargets <= 0 {
		lim.MaxTargets = DefaultLimits.MaxTargets
	}
	if lim.MaxYAMLNodes <= 0 {
		lim.MaxYAMLNodes = DefaultLimits.MaxYAMLNodes
	}
	return lim
}

// errTooLarge is readBounded's error for a file over the size limit.
var errTooLarge = errors.New("too large")

// readBounded reads at most max bytes of file. It never reads more, so a
// huge file or a device such as /dev/zero named by an include cannot
// exhaust memory.
func readBounded(file string, max ByteSize) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > int64(max) {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > int64(max) {
		return nil, errTooLarge
	}
	return data, nil
}

// tooLargeMsg says which limit a file crossed and how to raise it.
func (l *loader) tooLargeMsg(what string) string {
	size := l.lim.MaxFileSize.String()
	if _, err := strconv.Atoi(size); err == nil {
		size += " bytes"
	}
	return fmt.Sprintf("%s is larger than %s (raise the limit with --%s)", what, size, FlagMaxFileSize)
}

// limitChecks counts the checks of one file's root mapping against
// MaxChecks before they are decoded, and drops those past the limit so an
// oversized file is rejected without decoding all of it.
func (l *loader) limitChecks(root *yaml.Node) {
	_, seq := lookup(root, "checks")
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return
	}
	room := max(l.lim.MaxChecks-l.nChecks, 0)
	if len(seq.Content) > room {
		l.errAt(l.pos(seq.Content[room]), "more than %d checks (raise the limit with --%s)", l.lim.MaxChecks, FlagMaxChecks)
		seq.Content = seq.Content[:room]
	}
	l.nChecks += len(seq.Content)
}

// limitTargets counts the targets the checks amount to as far as the
// config tells (listed nodes; resolved ones count one per path).
func (l *loader) limitTargets(cfg *Config) {
	total := 0
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		total += targetCount(c)
		if total > l.lim.MaxTargets {
			l.errAt(c.Pos, "more than %d targets (checks × paths × nodes; raise the limit with --%s)", l.lim.MaxTargets, FlagMaxTargets)
			return
		}
	}
	shards := max(l.lim.Shards, 1)
	need := TargetMemory(cfg, shards)
	if l.lim.MaxMemory <= 0 || int64(need) <= int64(l.lim.MaxMemory) {
		return
	}
	// The error names the first check that does not fit, and the whole.
	room := (int64(l.lim.MaxMemory) - baseMemory) * int64(shards)
	lo, hi := 0, len(cfg.Checks) // the first n checks fit for n ≤ lo
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if targetsMemory(cfg, mid) <= room {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	at := Pos{File: cfg.File}
	if lo < len(cfg.Checks) {
		at = cfg.Checks[lo].Pos
	}
	src := ""
	if l.lim.MaxMemorySource != "" {
		src = ", " + l.lim.MaxMemorySource
	}
	what := fmt.Sprintf("the config's %d targets need", total)
	if shards > 1 {
		what = fmt.Sprintf("this shard's share of the config's %d targets (1/%d) needs", total, shards)
	}
	l.errAt(at, "%s about %s of memory, more than the %s vantage may use%s; "+
		"only the checks before this one fit (split the checks over daemons with --shard=I/N, give vantage more memory, or raise the limit with --%s)",
		what, mib(int64(need)), mib(int64(l.lim.MaxMemory)), src, FlagMaxMemory)
}

// mib spells n bytes in MiB.
func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }
