package daemon

import (
	"os"
	"syscall"
)

type sysStat struct{ dev, ino uint64 }

func statSys(fi os.FileInfo) (sysStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return sysStat{}, false
	}
	return sysStat{dev: uint64(st.Dev), ino: st.Ino}, true
}
