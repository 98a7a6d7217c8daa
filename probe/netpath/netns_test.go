package netpath

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

const netnsServerEnv = "VANTAGE_NETPATH_NETNS_SERVER"

// TestHelperNetnsServer is not a test: TestTwoUplinks re-executes the test
// binary inside a network namespace to run this server there. It prints
// "LISTEN <port>", then writes each client its own address and prints
// "CONN <addr>"; it exits when its stdin closes.
func TestHelperNetnsServer(t *testing.T) {
	if os.Getenv(netnsServerEnv) != "1" {
		t.Skip("helper process for TestTwoUplinks")
	}
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("LISTEN", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		fmt.Println("CONN", c.RemoteAddr())
		_, _ = io.WriteString(c, c.RemoteAddr().String()+"\n")
		c.Close()
	}
}

// needRootAndIP skips without root or iproute2, except in CI where a
// missing dependency must fail.
func needRootAndIP(t *testing.T) {
	t.Helper()
	skip := t.Skip
	if os.Getenv("CI") == "true" {
		skip = t.Fatal
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("iproute2 (`ip`) not installed:", err)
	}
	if os.Geteuid() != 0 {
		skip("network namespaces need root")
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freeSubnet picks a 10.213.X.0/24 that no host address or route uses.
func freeSubnet(t *testing.T) int {
	t.Helper()
	for i := range 250 {
		x := (os.Getpid() + i) % 250
		out, err := exec.Command("ip", "-4", "route", "show", "table", "all", "root", fmt.Sprintf("10.213.%d.0/24", x)).Output()
		if err != nil {
			t.Fatalf("ip route show: %v", err)
		}
		addrOut, _ := exec.Command("ip", "-4", "addr", "show", "to", fmt.Sprintf("10.213.%d.0/24", x)).Output()
		if len(strings.TrimSpace(string(out))) == 0 && len(strings.TrimSpace(string(addrOut))) == 0 {
			return x
		}
	}
	t.Fatal("no free 10.213.x.0/24 subnet")
	return 0
}

// TestTwoUplinks simulates two uplinks: veth pairs from the host into a
// namespace "internet" holding a server. Path A is bound to uplink 1 by
// interface, path B to uplink 2 by source address. With uplink 2 down,
// path B fails clearly while path A still works.
func TestTwoUplinks(t *testing.T) {
	needRootAndIP(t)
	pid := os.Getpid()
	ns := fmt.Sprintf("vnp-inet-%d", pid)
	up1, up2 := fmt.Sprintf("vnp%da", pid), fmt.Sprintf("vnp%db", pid)
	x := freeSubnet(t)
	host1, peer1 := fmt.Sprintf("10.213.%d.1", x), fmt.Sprintf("10.213.%d.2", x)
	host2, peer2 := fmt.Sprintf("10.213.%d.5", x), fmt.Sprintf("10.213.%d.6", x)
	guard := fmt.Sprintf("10.213.%d.0/24", x)

	must := func(args ...string) {
		t.Helper()
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := ipCmd("netns", "add", ns); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("cannot create network namespaces here:", err)
	}
	// Cleanups run last-in first-out; each tolerates what is already gone.
	t.Cleanup(func() {
		_ = ipCmd("link", "del", up1)
		_ = ipCmd("link", "del", up2)
		_ = ipCmd("netns", "del", ns)
	})
	must("link", "add", up1, "type", "veth", "peer", "name", "up1", "netns", ns)
	must("link", "add", up2, "type", "veth", "peer", "name", "up2", "netns", ns)
	must("addr", "add", host1+"/30", "dev", up1)
	must("addr", "add", host2+"/30", "dev", up2)
	must("link", "set", up1, "up")
	must("link", "set", up2, "up")
	must("-n", ns, "addr", "add", peer1+"/30", "dev", "up1")
	must("-n", ns, "addr", "add", peer2+"/30", "dev", "up2")
	must("-n", ns, "link", "set", "lo", "up")
	must("-n", ns, "link", "set", "up1", "up")
	must("-n", ns, "link", "set", "up2", "up")
	// Once an uplink is down its connected route goes; without this guard
	// the kernel would send the packets out of the default route instead.
	must("route", "add", "unreachable", guard)
	t.Cleanup(func() { _ = ipCmd("route", "del", "unreachable", guard) })

	port := startNetnsServer(t, ns)

	pathA := mustNew(t, checks.Path{Name: "uplink1", Interface: up1})
	pathB := mustNew(t, checks.Path{Name: "isp-b", SourceIP: host2})
	seen := func(p *Path, addr string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := p.DialContext(ctx, "tcp", net.JoinHostPort(addr, port))
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		host, _, _ := net.SplitHostPort(strings.TrimSpace(line))
		return host, err
	}
	if got, err := seen(pathA, peer1); err != nil || got != host1 {
		t.Fatalf("path A: server saw %q, %v; want %s", got, err, host1)
	}
	if got, err := seen(pathB, peer2); err != nil || got != host2 {
		t.Fatalf("path B: server saw %q, %v; want %s", got, err, host2)
	}

	must("link", "set", up2, "down")
	_, err := seen(pathB, peer2)
	if err == nil || !strings.HasPrefix(err.Error(), `path "isp-b": `) ||
		!(strings.Contains(err.Error(), "no route to host") || strings.Contains(err.Error(), "network is unreachable")) {
		t.Errorf("path B with uplink 2 down: err = %v", err)
	}
	t.Log("path B with uplink 2 down:", err)
	// A path bound to the downed interface fails too.
	pathC := mustNew(t, checks.Path{Name: "uplink2", Interface: up2})
	if _, err := seen(pathC, peer2); err == nil || !strings.HasPrefix(err.Error(), `path "uplink2": `) {
		t.Errorf("path bound to downed uplink: err = %v", err)
	}
	if got, err := seen(pathA, peer1); err != nil || got != host1 {
		t.Errorf("path A after uplink 2 went down: server saw %q, %v", got, err)
	}
}

// startNetnsServer runs TestHelperNetnsServer inside ns and returns its
// port.
func startNetnsServer(t *testing.T, ns string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperNetnsServer$")
	cmd.Env = append(os.Environ(), netnsServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "CONN ") {
				t.Log("netns server:", line)
				continue
			}
			select {
			case lines <- line:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		// Closing stdin ends the server; all output must be read before Wait.
		stdin.Close()
		select {
		case <-scanDone:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-scanDone
		}
		_ = cmd.Wait()
	})
	select {
	case line := <-lines:
		port, ok := strings.CutPrefix(line, "LISTEN ")
		if !ok {
			t.Fatalf("netns server: %s", line)
		}
		return port
	case <-time.After(20 * time.Second):
		t.Fatal("netns server did not start")
	}
	return ""
}
