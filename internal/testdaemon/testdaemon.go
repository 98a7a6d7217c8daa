// Package testdaemon runs a vantage daemon for a test: built from
// daemon.Options, serving on a loopback port, stopped when the test ends;
// and the demo shop and webhook receiver it usually works with.
// It is apart from internal/testenv because it imports the daemon and
// every kind, whose own tests import testenv. Imported only by tests.
package testdaemon

import (
	"context"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
)

// Shop starts the demo shop on loopback (its files in a temporary
// directory, warnings to the test log) and closes it when the test ends.
func Shop(tb testing.TB) *demo.Shop {
	tb.Helper()
	shop, err := demo.Start(tb.Context(), demo.Options{Dir: tb.TempDir(), Logger: testLogger(tb)})
	if err != nil {
		tb.Fatalf("starting the demo shop: %v", err)
	}
	tb.Cleanup(func() { _ = shop.Close() })
	return shop
}

// Receiver runs the demo's webhook receiver (what `vantage demo` prints
// notifications with) on a free loopback port until the test ends; its
// Messages are what was delivered.
func Receiver(tb testing.TB) *demo.Receiver {
	tb.Helper()
	rcv, err := demo.StartReceiver("127.0.0.1:0", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rcv.Close() })
	return rcv
}

func testLogger(tb testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
}

// Daemon is a daemon running on 127.0.0.1.
type Daemon struct {
	*daemon.Daemon
	// Addr is the listener's host:port; URL is "http://" + Addr.
	Addr, URL string

	tb       testing.TB
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// Start builds a daemon from o and runs it until the test ends. An unset
// Logger writes warnings and errors to the test log; unset Probers are
// every kind's (kinds.Probers, without a browser), and unset Kinds the
// registry of every kind (kinds.Registry).
func Start(tb testing.TB, o daemon.Options) *Daemon {
	tb.Helper()
	if reflect.ValueOf(o.Logger).IsZero() {
		o.Logger = testLogger(tb)
	}
	if o.Kinds == nil {
		o.Kinds = kinds.Registry()
	}
	if o.Probers == nil {
		o.Probers = kinds.Probers(o.Logger, nil)
	}
	d, err := daemon.New(o)
	if err != nil {
		tb.Fatalf("daemon.New: %v", err)
	}
	return Run(tb, d)
}

// Run runs a built daemon on 127.0.0.1:0 until Stop or the end of the test.
func Run(tb testing.TB, d *daemon.Daemon) *Daemon {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Daemon{Daemon: d, Addr: l.Addr().String(), tb: tb, cancel: cancel, done: make(chan error, 1)}
	r.URL = "http://" + r.Addr
	go func() { r.done <- d.Run(ctx, l) }()
	tb.Cleanup(r.Stop)
	return r
}

// Stop cancels the daemon and waits for Run to return (10s at most); the
// test fails if Run returned an error or did not return. Later calls do
// nothing, so a test may stop the daemon early to read what it left.
func (r *Daemon) Stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				r.tb.Errorf("daemon Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			r.tb.Errorf("daemon Run did not return within 10s of cancellation")
		}
	})
}
