//go:build !linux

package openai

import (
	"errors"
	"syscall"
)

// canWatch is false: only Linux reports a socket's TCP state here, so
// elsewhere a non-streamed generation runs on for a client that left.
const canWatch = false

func peerLeft(syscall.RawConn) (bool, error) {
	return false, errors.New("not supported on this platform")
}
