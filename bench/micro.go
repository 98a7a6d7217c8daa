package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// benchPackages lists the packages under ./... whose test files declare a
// benchmark, so `go test` does not build every other test binary.
func benchPackages(ctx context.Context) ([]string, error) {
	// -e: a package another engineer is mid-way through still lists.
	out, err := exec.CommandContext(ctx, "go", "list", "-e", "-f",
		`{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}`,
		"./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	benchFunc := regexp.MustCompile(`(?m)^func Benchmark\w*\(\s*\w+\s+\*testing\.B\s*\)`)
	var pkgs []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		for name := range strings.SplitSeq(f[2], ",") {
			if name == "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(f[1], name))
			if err == nil && benchFunc.Match(b) {
				pkgs = append(pkgs, f[0])
				break
			}
		}
	}
	return pkgs, nil
}

// microResult is the medians of one benchmark over its -count runs.
type microResult struct {
	pkg, name string
	runs      int
	metrics   map[string]float64 // unit → median
	units     []string           // units in first-seen order
}

// runMicro runs the benchmarks of pkgs and returns the medians, plus the
// raw output for diagnosis. A package that fails is reported in the error
// but the others' results are kept.
func runMicro(ctx context.Context, pkgs []string, benchtime string, count int, progress io.Writer) ([]microResult, error) {
	args := append([]string{"test", "-run=^$", "-bench=.", "-benchmem",
		"-benchtime=" + benchtime, "-count=" + strconv.Itoa(count), "-timeout=15m"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, progress)
	cmd.Stderr = io.MultiWriter(&out, progress)
	runErr := cmd.Run()
	res := parseBench(&out)
	if runErr != nil {
		return res, fmt.Errorf("go test -bench: %w (failing packages are missing from the table)", runErr)
	}
	return res, nil
}

// parseBench reads `go test -bench` output: "pkg:" lines set the package,
// benchmark lines are "BenchmarkName-P  N  v1 unit1  v2 unit2 ...".
func parseBench(r io.Reader) []microResult {
	type key struct{ pkg, name string }
	samples := map[key]map[string][]float64{}
	units := map[key][]string{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
			continue
		}
		k := key{pkg, trimProcs(f[0])}
		if samples[k] == nil {
			samples[k] = map[string][]float64{}
			order = append(order, k)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			u := f[i+1]
			if samples[k][u] == nil {
				units[k] = append(units[k], u)
			}
			samples[k][u] = append(samples[k][u], v)
		}
	}
	out := make([]microResult, 0, len(order))
	for _, k := range order {
		m := microResult{pkg: k.pkg, name: k.name, metrics: map[string]float64{}, units: units[k]}
		for u, vs := range samples[k] {
			m.metrics[u] = median(vs)
			m.runs = max(m.runs, len(vs))
		}
		out = append(out, m)
	}
	return out
}

// trimProcs drops the "-GOMAXPROCS" suffix go test adds to names.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// isStandardUnit: these units get their own columns; anything a benchmark
// reports with b.ReportMetric goes into the last one.
func isStandardUnit(u string) bool {
	return u == "ns/op" || u == "B/op" || u == "allocs/op"
}

func (m microResult) extra() string {
	var parts []string
	for _, u := range m.units {
		if !isStandardUnit(u) {
			parts = append(parts, formatNum(m.metrics[u])+" "+u)
		}
	}
	return strings.Join(parts, ", ")
}
