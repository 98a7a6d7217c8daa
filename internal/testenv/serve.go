package testenv

import (
	"net"
	"sync"
	"testing"
)

// Listen opens a TCP listener on addr ("127.0.0.1:0" when empty).
func Listen(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// ServeConns accepts connections on ln until the test ends and hands each
// to handle in a goroutine of its own; the connection is closed when
// handle returns. When the test ends, ln and every connection still open
// are closed, which ends a handle blocked on reading or relaying, and the
// accept loop and the handlers are waited for.
func ServeConns(tb testing.TB, ln net.Listener, handle func(net.Conn)) {
	tb.Helper()
	var (
		mu     sync.Mutex
		open   = map[net.Conn]bool{}
		closed bool
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
