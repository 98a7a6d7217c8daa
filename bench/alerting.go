package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// alertLatency runs daemon's TestAlertLatencyBench (the demo shop and a
// daemon with the demo config, in-process; about four minutes) and returns
// a BENCHMARKS.md section: time from injecting a node fault to the webhook
// receiving LoadBalancerNodeDegraded naming the node.
func alertLatency(ctx context.Context, progress io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=15m", "-run=^TestAlertLatencyBench$", "-v", "./daemon/")
	cmd.Env = append(os.Environ(), "VANTAGE_ALERT_LATENCY_BENCH=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, progress), io.MultiWriter(&out, progress)
	runErr := cmd.Run()
	var rows []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "ALERT-LATENCY" {
			rows = append(rows, fmt.Sprintf("| %s | %s s |", f[1], f[2]))
		}
	}
	if runErr != nil || len(rows) == 0 {
		return "", fmt.Errorf("alert latency: go test: %v (%d rows)", runErr, len(rows))
	}
	return "## Alert latency\n\n" +
		"`VANTAGE_ALERT_LATENCY_BENCH=1 go test -run TestAlertLatencyBench -v ./daemon/`: the demo config " +
		"(10 s interval, `LoadBalancerNodeDegraded` at `window: 2m`, `for: 30s`, 2 s evaluation), the fault on lb2 " +
		"injected after a full window of healthy runs; time until the webhook receives the page naming the node " +
		"(target ≤ 60 s for every response slow). See docs/alerting.md for what bounds it.\n\n" +
		"| fault on lb2 | fault → page |\n|---|--:|\n" + strings.Join(rows, "\n") + "\n\n", nil
}
