package listener

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// fdHeadroom is how many file descriptors are kept free of client
// connections for everything else the daemon opens: model files, the log,
// the admin socket, the watchdog's probe, a reload's new sockets. Without
// it a flood of connections makes accept fail with EMFILE, and then every
// good request, /metrics included, times out.
const fdHeadroom = 128

// connLimits counts open client connections across every socket and
// sheds new ones above the limits, before fasthttp sees them.
type connLimits struct {
	max      atomic.Int64 // 0: only the file-descriptor bound
	maxPerIP atomic.Int64 // 0: unlimited
	fdBound  int64        // RLIMIT_NOFILE less fdHeadroom; 0 if unknown

	open    atomic.Int64
	mu      sync.Mutex
	perIP   map[netip.Addr]int64
	refused map[string]*metrics.Counter
}

// Reasons of a shed connection, as the metric label says them.
const (
	reasonMaxConns      = "max_connections"
	reasonMaxConnsPerIP = "max_connections_per_ip"
)

func newConnLimits(set *metrics.Set) *connLimits {
	l := &connLimits{perIP: map[netip.Addr]int64{}, refused: map[string]*metrics.Counter{}}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err == nil && r.Cur > fdHeadroom*2 && r.Cur < 1<<40 {
		l.fdBound = int64(r.Cur) - fdHeadroom
	}
	for _, reason := range []string{reasonMaxConns, reasonMaxConnsPerIP} {
		l.refused[reason] = set.NewCounter(`aiassist_http_connections_refused_total{reason="` + reason + `"}`)
	}
	set.NewGauge("aiassist_http_connections_open", func() float64 { return float64(l.open.Load()) })
	return l
}

// limit is the total bound in force: the configured one, never above what
// the file-descriptor limit leaves.
func (l *connLimits) limit() int64 {
	m := l.max.Load()
	if l.fdBound > 0 && (m == 0 || m > l.fdBound) {
		return l.fdBound
	}
	return m
}

// admit counts a new connection from ip, or returns the reason to shed it.
func (l *connLimits) admit(ip netip.Addr) (release func(), reason string) {
	if m, open := l.limit(), l.open.Add(1); m > 0 && open > m {
		l.open.Add(-1)
		l.refused[reasonMaxConns].Inc()
		return nil, reasonMaxConns
	}
	if per := l.maxPerIP.Load(); per > 0 && ip.IsValid() {
		l.mu.Lock()
		if l.perIP[ip] >= per {
			l.mu.Unlock()
			l.open.Add(-1)
			l.refused[reasonMaxConnsPerIP].Inc()
			return nil, reasonMaxConnsPerIP
		}
		l.perIP[ip]++
		l.mu.Unlock()
		var once sync.Once
		return func() {
			once.Do(func() {
				l.mu.Lock()
				if l.perIP[ip]--; l.perIP[ip] <= 0 {
					delete(l.perIP, ip)
				}
				l.mu.Unlock()
				l.open.Add(-1)
			})
		}, ""
	}
	var once sync.Once
	return func() { once.Do(func() { l.open.Add(-1) }) }, ""
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// shed answers a connection refused before fasthttp sees it: a 503
// written at once, with a short deadline, then the connection is closed,
// which frees its file descriptor.
func shed(c net.Conn, reason string) {
	body := `{"error":{"message":"too many connections (server.` + reason + `); retry later","type":"overloaded_error","code":"` + reason + `"}}`
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	c.Close()
}

// Close releases the connection's place in the limits once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.release()
	}
	return err
}
