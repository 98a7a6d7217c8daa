package netpath

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

const netnsServerEnv = "VANTAGE_NETPATH_NETNS_SERVER"

// TestMain runs netnsServer instead of the tests when the binary was
// re-executed by startNetnsServer; a leaked netnsServerEnv fails the run
// rather than turn it into a server that passes by exiting 0.
func TestMain(m *testing.M) {
	if _, child, err := testenv.ChildMode(netnsServerEnv); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(2)
	} else if child {
		netnsServer()
	}
	os.Exit(m.Run())
}

// netnsServer is what TestTwoUplinks runs inside a network namespace (the
// test binary, re-executed there). It prints "LISTEN <port>", then writes
// each client its own address and prints "CONN <addr>"; it exits when its
// stdin closes.
func netnsServer() {
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

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNetns runs f on a goroutine whose OS thread has joined the named
// network namespace, so every socket f opens lives there. The thread is
// never unlocked: it exits with the goroutine instead of returning to Go's
// pool still inside the namespace.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestTwoUplinks simulates a host with two uplinks, all inside namespaces
// the test creates: "host" (where the dialer runs) is joined to "inet"
// (holding a server) by two veth pairs. Path A is bound to uplink 1 by
// interface, path B to uplink 2 by source address. With uplink 2 down,
// path B fails clearly while path A still works.
//
// Nothing is added to the root namespace: a link or address change there
// makes every Chromium on the machine (browser tests running in parallel)
// abort its requests with net::ERR_NETWORK_CHANGED.
func TestTwoUplinks(t *testing.T) {
	testenv.RootAndIP(t)
	pid := os.Getpid()
	hostNS, inetNS := fmt.Sprintf("vnp-host-%d", pid), fmt.Sprintf("vnp-inet-%d", pid)
	const up1, up2 = "up1", "up2"
	const host1, peer1 = "10.213.0.1", "10.213.0.2"
	const host2, peer2 = "10.213.0.5", "10.213.0.6"
	const guard = "10.213.0.0/24"

	must := func(args ...string) {
		t.Helper()
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{hostNS, inetNS} {
		if err := ipCmd("netns", "add", ns); err != nil {
			testenv.Missing(t, "cannot create network namespaces here: %v", err)
		}
		// Deleting a namespace deletes its veth ends with it.
		t.Cleanup(func() { _ = ipCmd("netns", "del", ns) })
	}
	h, i := []string{"-n", hostNS}, []string{"-n", inetNS}
	cmd := func(ns []string, args ...string) []string { return append(append([]string{}, ns...), args...) }
	must(cmd(h, "link", "add", up1, "type", "veth", "peer", "name", up1, "netns", inetNS)...)
	must(cmd(h, "link", "add", up2, "type", "veth", "peer", "name", up2, "netns", inetNS)...)
	must(cmd(h, "addr", "add", host1+"/30", "dev", up1)...)
	must(cmd(h, "addr", "add", host2+"/30", "dev", up2)...)
	for _, ns := range [][]string{h, i} {
		must(cmd(ns, "link", "set", "lo", "up")...)
		must(cmd(ns, "link", "set", up1, "up")...)
		must(cmd(ns, "link", "set", up2, "up")...)
	}
	must(cmd(i, "addr", "add", peer1+"/30", "dev", up1)...)
	must(cmd(i, "addr", "add", peer2+"/30", "dev", up2)...)
	// Once an uplink is down its connected route goes; without this guard
	// the kernel would try another route instead of failing.
	must(cmd(h, "route", "add", "unreachable", guard)...)

	port := startNetnsServer(t, inetNS)

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
	newPath := func(cfg checks.Path) *Path {
		p, err := New(cfg)
		if err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
			return nil
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}

	// Phase 1, both uplinks up.
	var pathA, pathB *Path
	inNetns(t, hostNS, func() {
		pathA = newPath(checks.Path{Name: "uplink1", Interface: up1})
		pathB = newPath(checks.Path{Name: "isp-b", SourceIP: host2})
		if pathA == nil || pathB == nil {
			return
		}
		if got, err := seen(pathA, peer1); err != nil || got != host1 {
			t.Errorf("path A: server saw %q, %v; want %s", got, err, host1)
		}
		if got, err := seen(pathB, peer2); err != nil || got != host2 {
			t.Errorf("path B: server saw %q, %v; want %s", got, err, host2)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// Phase 2, uplink 2 down.
	must(cmd(h, "link", "set", up2, "down")...)
	inNetns(t, hostNS, func() {
		_, err := seen(pathB, peer2)
		if err == nil || !strings.HasPrefix(err.Error(), `path "isp-b": `) ||
			!(strings.Contains(err.Error(), "no route to host") || strings.Contains(err.Error(), "network is unreachable")) {
			t.Errorf("path B with uplink 2 down: err = %v", err)
		}
		t.Log("path B with uplink 2 down:", err)
		// A path bound to the downed interface fails too.
		if pathC := newPath(checks.Path{Name: "uplink2", Interface: up2}); pathC != nil {
			if _, err := seen(pathC, peer2); err == nil || !strings.HasPrefix(err.Error(), `path "uplink2": `) {
				t.Errorf("path bound to downed uplink: err = %v", err)
			}
		}
		if got, err := seen(pathA, peer1); err != nil || got != host1 {
			t.Errorf("path A after uplink 2 went down: server saw %q, %v", got, err)
		}
	})
}

// startNetnsServer runs netnsServer inside ns and returns its port.
func startNetnsServer(t *testing.T, ns string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), testenv.ChildEnv(netnsServerEnv, "1"))
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
