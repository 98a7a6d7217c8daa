package main

import (
	"fmt"
	"strconv"
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

func (f *configFlags) limits() checks.Limits {
	return checks.Limits{MaxFileSize: checks.ByteSize(f.maxFileSize), MaxChecks: *f.maxChecks,
		MaxTargets: *f.maxTargets, MaxYAMLNodes: *f.maxNodes}
}
