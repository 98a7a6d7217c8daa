package netpath

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindToDevice pins a socket to an interface (SO_BINDTODEVICE) so it
// leaves through that interface whatever the routing table says.
func bindToDevice(iface string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface)
		}); err != nil {
			return err
		}
		if serr != nil {
			return &bindError{iface: iface, err: serr}
		}
		return nil
	}
}
