package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"os/exec"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// instance is one running Chromium process.
type instance struct {
	allocCancel context.CancelFunc
	ctx         context.Context // the browser's chromedp context; children are runs
	cancel      context.CancelFunc
	b           *chromedp.Browser
	dir         string // TMPDIR, HOME and profile of this browser; removed on close
	pid         int
	started     time.Time
}

// launchFlags are Chromium's switches. Background networking, component
// updates, sync and QUIC are off so the browser never reaches out on its
// own; direct name resolution is disabled so nothing bypasses the per-run
// proxy; certificate errors are ignored because the proxy verifies every
// host's certificate against the configured CA before it opens a tunnel.
func launchFlags(execPath, dir string, noSandbox bool) []chromedp.ExecAllocatorOption {
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	if noSandbox || os.Geteuid() == 0 {
		// Chromium's sandbox cannot run as root; as any other user it stays
		// on unless --browser.no-sandbox says the host cannot give it the
		// user namespaces it needs (some container runtimes).
		opts = append(opts, chromedp.NoSandbox)
	}
	return append(opts,
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.DisableGPU,
		chromedp.Flag("disable-popup-blocking", false), // keep Chromium's popup blocker
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("ignore-certificate-errors", true),
		// The default context (its first blank tab) must not reach anything.
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1280, 800),
		chromedp.Env("TMPDIR="+dir, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"XDG_CACHE_HOME="+filepath.Join(dir, "cache")),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Own process group so every helper process can be killed at
			// once; die with us.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	)
}

// launch starts Chromium; timeout bounds the start.
func launch(execPath string, timeout time.Duration, noSandbox bool) (*instance, error) {
	if _, err := os.Stat(execPath); err != nil {
		return nil, fmt.Errorf("chromium not found at %s: %w", execPath, err)
	}
	dir, err := os.MkdirTemp("", "vantage-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromium temp dir: %w", err)
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), launchFlags(execPath, dir, noSandbox)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	inst := &instance{allocCancel: allocCancel, ctx: ctx, cancel: cancel, dir: dir, started: time.Now()}
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(ctx) }() // the browser lives as long as ctx
	select {
	case err = <-errc:
	case <-time.After(timeout):
		err = fmt.Errorf("no answer within %s", timeout)
	}
	if err != nil {
		inst.close()
		return nil, fmt.Errorf("chromium %s failed to start: %s", execPath, firstLines(err.Error(), 3))
	}
	inst.b = chromedp.FromContext(ctx).Browser
	if pr := inst.b.Process(); pr != nil {
		inst.pid = pr.Pid
	}
	return inst, nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.TrimSpace(strings.Join(lines, " "))
}

// lost reports whether the connection to the browser is gone.
func (i *instance) lost() bool {
	select {
	case <-i.b.LostConnection:
		return true
	case <-i.ctx.Done():
		return true
	default:
		return false
	}
}

// healthy asks the browser for its version within timeout.
func (i *instance) healthy(timeout time.Duration) error {
	if i.lost() {
		return errors.New("connection to chromium lost")
	}
	ctx, cancel := context.WithTimeout(i.ctx, timeout)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.GetVersion, struct{}{}); err != nil {
		return fmt.Errorf("chromium does not answer: %w", err)
	}
	return nil
}

// close kills the browser and every helper process, reaps it and removes
// its directory.
func (i *instance) close() {
	pids := i.processes()
	if i.pid > 0 {
		_ = syscall.Kill(-i.pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	i.cancel()
	// allocCancel waits until the process has exited and been reaped.
	i.allocCancel()
	_ = os.RemoveAll(i.dir)
}

// processes lists the PIDs of this browser's processes: every process whose
// command line names its profile directory (helpers can leave the group).
func (i *instance) processes() []int {
	marker := []byte(i.dir)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, marker) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// pss is the proportional set size of all the browser's processes, in bytes.
func (i *instance) pss() int64 {
	var total int64
	for _, pid := range i.processes() {
		total += processPSS(pid)
	}
	return total
}

// processPSS reads Pss from /proc/PID/smaps_rollup (0 when unreadable).
func processPSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
