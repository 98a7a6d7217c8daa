package checks

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseIPVersion parses "4", "6" or "any" (also "" as any).
func ParseIPVersion(s string) (IPVersion, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "4":
		return 4, nil
	case "6":
		return 6, nil
	case "any", "":
		return 0, nil
	}
	return 0, fmt.Errorf("invalid IP version %q (want 4, 6 or any)", s)
}

// String renders the version as configured: "4", "6" or "any".
func (v IPVersion) String() string {
	if v == 0 {
		return "any"
	}
	return strconv.Itoa(int(v))
}

// UnmarshalYAML lets IPVersion be decoded by plain yaml.v3 too.
func (v *IPVersion) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("invalid IP version (want 4, 6 or any)")
	}
	iv, err := ParseIPVersion(n.Value)
	if err != nil {
		return err
	}
	*v = iv
	return nil
}

// byteUnit returns the multiplier of a lower-cased size suffix: SI units
// are powers of 1000, IEC units (and bare k/m/g) powers of 1024.
func byteUnit(u string) (int64, bool) {
	switch u {
	case "", "b":
		return 1, true
	case "kb":
		return 1000, true
	case "mb":
		return 1000 * 1000, true
	case "gb":
		return 1000 * 1000 * 1000, true
	case "tb":
		return 1000 * 1000 * 1000 * 1000, true
	case "k", "kib":
		return 1 << 10, true
	case "m", "mib":
		return 1 << 20, true
	case "g", "gib":
		return 1 << 30, true
	case "tib":
		return 1 << 40, true
	}
	return 0, false
}

// ParseByteSize parses sizes like 512, 10KB (10*1000), 10KiB (10*1024),
// 1.5MiB or 1GiB.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnit(unit)
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512, 10KB, 10KiB, 10MiB)", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return ByteSize(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512, 10KB, 10KiB, 10MiB)", s)
	}
	return ByteSize(f * float64(mult)), nil
}

// String renders the size in the largest IEC unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML lets ByteSize be decoded by plain yaml.v3 too.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("invalid size (want e.g. 512, 10KB, 10MiB)")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML lets NodeAddr be decoded by plain yaml.v3 too: a scalar is
// the address, a mapping has name and address.
func (a *NodeAddr) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*a = NodeAddr{Address: n.Value}
		return nil
	}
	type plain NodeAddr
	return n.Decode((*plain)(a))
}

// Label is the node's `node` label value: its name, else its IP without port.
func (a NodeAddr) Label() string {
	if a.Name != "" {
		return a.Name
	}
	if ip, _, ok := splitIPPort(a.Address); ok {
		return ip.String()
	}
	return a.Address
}
