package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vantage-monitoring/vantage/checks"
)

// flagRules are one command's checks of flag values that parse but make no
// sense (a limit of 0, a negative interval). kingpin runs them after
// parsing, so a bad value fails like a malformed one: exit 2, before
// anything starts.
type flagRules []func() error

// rulesFor attaches a rule list to c (kingpin holds one validator each).
func rulesFor(c *kingpin.CmdClause) *flagRules {
	r := &flagRules{}
	c.Validate(func(*kingpin.CmdClause) error {
		for _, rule := range *r {
			if err := rule(); err != nil {
				return err
			}
		}
		return nil
	})
	return r
}

// atLeast requires --name to be min or more.
func (r *flagRules) atLeast(name string, v *int, min int) {
	*r = append(*r, func() error {
		if *v < min {
			return fmt.Errorf("--%s must be at least %d, got %d", name, min, *v)
		}
		return nil
	})
}

// port requires --name to be a TCP port or 0 (a random one).
func (r *flagRules) port(name string, v *int) {
	*r = append(*r, func() error {
		if *v < 0 || *v > 65535 {
			return fmt.Errorf("--%s must be a port from 1 to 65535, or 0 for a random one; got %d", name, *v)
		}
		return nil
	})
}

// positive requires the duration --name to be more than zero.
func (r *flagRules) positive(name string, v *time.Duration) {
	*r = append(*r, func() error {
		if *v <= 0 {
			return fmt.Errorf("--%s must be more than 0s, got %s", name, *v)
		}
		return nil
	})
}

// byteSize is the value of --config.max-file-size, such as 16MiB
// (checks.ParseByteSize).
type byteSize checks.ByteSize

func (b *byteSize) Set(s string) error {
	v, err := checks.ParseByteSize(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", checks.FlagMaxFileSize, err)
	}
	*b = byteSize(v)
	return nil
}

func (b *byteSize) String() string { return checks.ByteSize(*b).String() }

// configFlags are the config file and the limits it is loaded within,
// shared by run, validate and once.
type configFlags struct {
	file        *string
	maxFileSize byteSize
	maxChecks   *int
	maxTargets  *int
	maxNodes    *int
	maxMemory   *string
}

func addConfigFlags(c *kingpin.CmdClause, rules *flagRules) *configFlags {
	d := checks.DefaultLimits
	f := &configFlags{file: c.Flag("config.file", "vantage configuration file.").Default("vantage.yaml").String()}
	c.Flag(checks.FlagMaxFileSize, "Largest config file accepted (each of the main file and its includes), e.g. 16MiB.").
		Default(d.MaxFileSize.String()).SetValue(&f.maxFileSize)
	f.maxChecks = c.Flag(checks.FlagMaxChecks, "Most checks a config may define, over all its files.").
		Default(strconv.Itoa(d.MaxChecks)).Int()
	f.maxTargets = c.Flag(checks.FlagMaxTargets, "Most targets (checks × paths × listed nodes) a config may define.").
		Default(strconv.Itoa(d.MaxTargets)).Int()
	f.maxNodes = c.Flag(checks.FlagMaxYAMLNodes, "Most YAML nodes one config file may amount to with its aliases followed.").
		Default(strconv.Itoa(d.MaxYAMLNodes)).Int()
	rules.atLeast(checks.FlagMaxChecks, f.maxChecks, 1)
	rules.atLeast(checks.FlagMaxTargets, f.maxTargets, 1)
	rules.atLeast(checks.FlagMaxYAMLNodes, f.maxNodes, 1)
	*rules = append(*rules, func() error {
		if f.maxFileSize <= 0 {
			return fmt.Errorf("--%s must be more than 0", checks.FlagMaxFileSize)
		}
		return nil
	})
	return f
}

// addMemoryFlag adds --config.max-memory: only the daemon checks a config
// against the memory of the machine it runs on.
func (f *configFlags) addMemoryFlag(c *kingpin.CmdClause, rules *flagRules) {
	f.maxMemory = c.Flag(checks.FlagMaxMemory, "Memory vantage may use: a config whose targets (this shard's share) need more "+
		"is refused at start and reload (docs/deployment.md). auto: GOMEMLIMIT when set, else the cgroup's memory limit, "+
		"else the physical memory; 0: no check.").Default("auto").String()
	*rules = append(*rules, func() error {
		_, _, err := parseMaxMemory(*f.maxMemory)
		return err
	})
}

func (f *configFlags) limits() checks.Limits {
	lim := checks.Limits{MaxFileSize: checks.ByteSize(f.maxFileSize), MaxChecks: *f.maxChecks,
		MaxTargets: *f.maxTargets, MaxYAMLNodes: *f.maxNodes}
	if f.maxMemory != nil {
		lim.MaxMemory, lim.MaxMemorySource, _ = parseMaxMemory(*f.maxMemory) // checked by the flag rules
	}
	return lim
}

// parseMaxMemory reads --config.max-memory: auto, 0 or a size.
func parseMaxMemory(v string) (checks.ByteSize, string, error) {
	if v == "auto" {
		n, src := machineMemory()
		return checks.ByteSize(n), src, nil
	}
	n, err := checks.ParseByteSize(v)
	if err != nil || n < 0 {
		return 0, "", fmt.Errorf("--%s: want auto, 0 or a size such as 900MiB, not %q", checks.FlagMaxMemory, v)
	}
	return n, "--" + checks.FlagMaxMemory, nil
}

// machineMemory is the memory this process may use and where that figure
// comes from: Go's soft limit (GOMEMLIMIT) when set, else the cgroup v2
// limit, else the physical memory; 0 when none is known.
func machineMemory() (int64, string) {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l, "GOMEMLIMIT"
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n, "the cgroup's memory.max"
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return n << 10, "the physical memory"
					}
				}
			}
		}
	}
	return 0, ""
}
