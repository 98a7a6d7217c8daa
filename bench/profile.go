package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// cpuProfile is where a scenario's daemon spent its CPU, as `go tool pprof
// -top` prints it, so that the next person sees where the time goes.
type cpuProfile struct {
	seconds   int
	cmd       string // how to reproduce the tables from the saved profile
	flat, cum string // the top entries, sorted by flat and by cumulative time
}

// takeProfile records a CPU profile of the daemon at addr over d through its
// /debug/pprof/profile and summarises the top n entries.
func takeProfile(ctx context.Context, binary, addr, dir string, d time.Duration, n int) (cpuProfile, error) {
	secs := max(int(d.Seconds()), 1)
	p := cpuProfile{seconds: secs}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return p, err
	}
	resp, err := (&http.Client{Timeout: d + time.Minute}).Do(req)
	if err != nil {
		return p, fmt.Errorf("CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return p, fmt.Errorf("CPU profile: %s: %s", resp.Status, b)
	}
	file := filepath.Join(dir, "cpu.pprof")
	f, err := os.Create(file)
	if err != nil {
		return p, err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return p, fmt.Errorf("CPU profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return p, err
	}
	top := func(extra ...string) (string, error) {
		args := append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}, extra...)
		args = append(args, binary, file)
		out, err := exec.CommandContext(ctx, "go", args...).Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof: %w", err)
		}
		return trimPprofHeader(string(out)), nil
	}
	if p.flat, err = top(); err != nil {
		return p, err
	}
	if p.cum, err = top("-cum"); err != nil {
		return p, err
	}
	p.cmd = fmt.Sprintf("curl -o cpu.pprof 'http://<daemon>/debug/pprof/profile?seconds=%d'; go tool pprof -top -nodecount=%d [-cum] ./vantage cpu.pprof", secs, n)
	return p, nil
}

// trimPprofHeader drops the file and build lines of pprof's output, keeping
// the sample summary and the table.
func trimPprofHeader(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func (p cpuProfile) markdown(b *strings.Builder, scenario string) {
	if p.flat == "" {
		return
	}
	fmt.Fprintf(b, "### CPU profile of scenario %s\n\n", scenario)
	fmt.Fprintf(b, "A %d s CPU profile of the daemon, taken right after the measured window at the same load: "+
		"the top entries by flat time (in the function itself), then by cumulative time (with what it calls). "+
		"Command: `%s`.\n\n", p.seconds, p.cmd)
	fmt.Fprintf(b, "```\n%s\n```\n\n```\n%s\n```\n\n", p.flat, p.cum)
}
