//go:build !linux

package netpath

import (
	"errors"
	"syscall"
)

func bindToDevice(iface string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, _ syscall.RawConn) error {
		return &bindError{iface: iface, err: errors.New("binding to an interface needs Linux")}
	}
}
