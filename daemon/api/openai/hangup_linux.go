package openai

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const canWatch = true

// tcpEstablished is TCP_ESTABLISHED of linux/tcp_states.h (tcpi_state).
const tcpEstablished = 1

// peerLeft reports whether the client has closed or reset the connection:
// its socket is no longer ESTABLISHED.
func peerLeft(rc syscall.RawConn) (bool, error) {
	var state uint8
	var infoErr error
	err := rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			infoErr = err
			return
		}
		state = info.State
	})
	if err != nil {
		return false, err
	}
	if infoErr != nil {
		return false, infoErr
	}
	return state != tcpEstablished, nil
}
