package openai

import (
	"net"
	"reflect"
	"syscall"
	"time"
)

// Noticing a client that left. fasthttp tells a handler nothing when its
// client closes the connection (RequestCtx.Done ends only at shutdown), and
// the connection's reader belongs to fasthttp: reading from it, even a
// byte, would take bytes of a pipelined next request. So the watcher reads
// nothing. It asks the kernel for the TCP state of the socket
// (getsockopt TCP_INFO): a client that closed or reset the connection has
// moved it out of ESTABLISHED (to CLOSE_WAIT or CLOSE), whatever data,
// pipelined or TLS records, is still unread. Like nginx, which treats a
// client's end of input as it leaving, a client that only half-closes its
// side counts as gone.

// hangupEvery is how often a running generation looks at its connection.
const hangupEvery = 100 * time.Millisecond

// watchHangup calls gone, once, if the client of c closes the connection
// while the watch runs; stop ends the watch and returns once it has ended,
// so c is not touched after it. A connection whose socket cannot be
// reached (not TCP, or another platform) is not watched.
func watchHangup(c net.Conn, every time.Duration, gone func()) (stop func()) {
	rc := rawConn(c)
	if rc == nil || !canWatch {
		return func() {}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			left, err := peerLeft(rc)
			if err != nil {
				return // the socket is closed or cannot say: stop looking
			}
			if left {
				gone()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

var netConnType = reflect.TypeFor[net.Conn]()

// rawConn finds the socket under c: through *tls.Conn (NetConn) and
// through structs that embed a net.Conn, as the daemon's listener and
// fasthttp's per-IP limit wrap connections. nil if there is none.
func rawConn(c net.Conn) syscall.RawConn {
	for range 8 { // wrappers do not nest deeper; a cycle must not spin
		switch x := c.(type) {
		case nil:
			return nil
		case syscall.Conn:
			rc, err := x.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			c = embedded(c)
		}
	}
	return nil
}

// embedded returns the net.Conn that the struct c points to embeds, or
// nil.
func embedded(c net.Conn) net.Conn {
	v := reflect.ValueOf(c)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Anonymous && f.Type == netConnType && f.IsExported() {
			inner, _ := v.Field(i).Interface().(net.Conn)
			return inner
		}
	}
	return nil
}
