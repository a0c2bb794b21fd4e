package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/listener"
)

// notifier tells systemd about the daemon's state through $NOTIFY_SOCKET
// (sd_notify). Without the variable every call does nothing.
//
// The messages, one datagram each:
//
//	READY=1\nSTATUS=serving generation N (M models)          first state serves; end of a reload
//	RELOADING=1\nMONOTONIC_USEC=T\nSTATUS=reloading (SOURCE) a reload starts, whatever triggered it
//	WATCHDOG=1                                               the self-check passed
//	STOPPING=1\nSTATUS=stopping                              shutdown starts
//
// After a failed reload the STATUS of READY=1 adds "; last reload failed:"
// and the first line of the error, until a reload succeeds. Sending
// RELOADING=1 for every reload works with Type=notify-reload (systemd 253+,
// which sends SIGHUP and waits for it) and with Type=notify and
// ExecReload=kill -HUP (systemd 252, which ignores MONOTONIC_USEC).
type notifier struct {
	logger *slog.Logger
}

func (n notifier) send(lines ...string) {
	msg := strings.Join(lines, "\n")
	if _, err := sd.SdNotify(false, msg); err != nil {
		n.logger.Warn("cannot notify systemd", "err", err, "message", msg)
	}
}

func (n notifier) ready(status string) { n.send(sd.SdNotifyReady, "STATUS="+status) }

func (n notifier) reloading(source string) {
	// SdNotifyMonotonicUsec ends in a newline.
	n.send(sd.SdNotifyReloading, strings.TrimSuffix(sd.SdNotifyMonotonicUsec(), "\n"), "STATUS=reloading ("+source+")")
}

func (n notifier) stopping() { n.send(sd.SdNotifyStopping, "STATUS=stopping") }

func (n notifier) watchdog() { n.send(sd.SdNotifyWatchdog) }

// status is the STATUS line for the current state.
func (d *Daemon) status() string {
	st := d.current.Load()
	s := fmt.Sprintf("serving generation %d (%d models)", st.api.Generation, len(st.models))
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	if d.lastErr != "" {
		s += "; last reload failed: " + d.lastErr
	}
	return s
}

// watchdog sends WATCHDOG=1 at half the interval systemd asks for
// ($WATCHDOG_USEC), but only when the self-check passes, so that systemd
// restarts a daemon whose reloader or HTTP loop is stuck.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		d.logger.Warn("ignoring the systemd watchdog settings", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	every := interval / 2
	d.logger.Info("systemd watchdog enabled", "interval_seconds", interval.Seconds())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := d.selfCheck(ctx, min(every/2, 5*time.Second)); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.logger.Error("self-check failed; not sending WATCHDOG=1", "err", err)
		} else {
			d.notify.watchdog()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// selfCheck asks the reloader goroutine to answer, unless it is busy with
// a reload, which makes progress on its own; checks that no listener's
// accept loop has died; and sends a request through every listener, which
// checks that its accept loop, the server and the handler run.
func (d *Daemon) selfCheck(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case d.pings <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		if !d.reloading.Load() {
			return errors.New("the reloader does not answer")
		}
	}
	if err := d.net.Health(); err != nil {
		return err
	}
	eps := d.net.Endpoints()
	if len(eps) == 0 {
		return errors.New("no listener")
	}
	var errs []error
	for _, ep := range eps {
		if err := d.probe(ep, timeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// probe sends a watchdog request to an endpoint, over TLS where it
// serves TLS. The handler answers it before the API sees it, so it leaves
// no access log line or metric. A listener that requires client
// certificates is probed up to its handshake, which shows its accept
// loop runs; the daemon has no client certificate to go further.
func (d *Daemon) probe(ep listener.Endpoint, timeout time.Duration) error {
	addr := ep.Addr
	target := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
		ip := "127.0.0.1"
		if ta.IP != nil && ta.IP.To4() == nil {
			ip = "::1"
		}
		target = net.JoinHostPort(ip, fmt.Sprint(ta.Port))
	}
	raw, err := net.DialTimeout(addr.Network(), target, timeout)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", target, err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(timeout))
	c := raw
	if ep.TLS != nil {
		if ep.TLS.ClientCAs != nil {
			return nil
		}
		tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: ep.TLS.MinVersion})
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake with %s: %w", target, err)
		}
		c = tc
	}
	fmt.Fprintf(c, "GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\n%s: %s\r\nConnection: close\r\n\r\n", watchdogHeader, d.probeToken)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from %s: %w", target, err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 204") {
		return fmt.Errorf("unexpected answer from %s: %q", target, strings.TrimSpace(line))
	}
	return nil
}

const watchdogHeader = "X-Aiassist-Watchdog"

func newProbeToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isProbe reports whether a request is the daemon's own watchdog probe:
// it carries the token only this process knows.
func (d *Daemon) isProbe(ctx *fasthttp.RequestCtx) bool {
	tok := ctx.Request.Header.Peek(watchdogHeader)
	return len(tok) > 0 && string(tok) == d.probeToken
}
