package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/listener"
	"github.com/aiassist/aiassist/schema"
)

// The admin endpoint: POST /admin/reload on the unix socket
// reload.admin_socket, which `aiassistd reload` calls. A unix socket
// rather than a TCP port on loopback, so that file permissions (mode 0660,
// the daemon's user and group) decide who may reload, and rather than a
// pid file plus SIGHUP, so that the caller learns whether the reload
// worked and, if not, why.

// adminServer serves the admin endpoint on one socket.
type adminServer struct {
	path string
	ln   net.Listener
	srv  *fasthttp.Server
	done chan struct{}
}

// prepareAdmin opens the admin socket cfg names if it is not open yet.
// It returns nil when nothing changes.
func (d *Daemon) prepareAdmin(cfg *schema.Config) (*adminServer, error) {
	path := cfg.Reload.AdminSocket
	if d.admin != nil && d.admin.path == path || d.admin == nil && path == "" {
		return nil, nil
	}
	if path == "" {
		return &adminServer{}, nil // close the old one
	}
	// A socket file left by a daemon that did not stop cleanly is
	// removed; one that a running daemon answers on is not.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("reload.admin_socket: %s is in use by another process", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("reload.admin_socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("reload.admin_socket: %w", err)
	}
	a := &adminServer{path: path, ln: ln, done: make(chan struct{})}
	a.srv = &fasthttp.Server{Handler: d.adminHandler, Name: "aiassist-admin", ReadTimeout: 10 * time.Second, Logger: listener.FasthttpLogger(d.logger)}
	return a, nil
}

// commitAdmin starts serving the admin socket prepareAdmin opened and
// closes the old one.
func (d *Daemon) commitAdmin(a *adminServer) {
	if a == nil {
		return
	}
	old := d.admin
	d.admin = nil
	if a.ln != nil {
		go func() {
			defer close(a.done)
			a.srv.Serve(a.ln)
		}()
		d.admin = a
	}
	if old != nil {
		old.close()
	}
}

func (a *adminServer) close() {
	// The admin handler may be waiting for the reloader, which may be
	// the caller: do not wait for open connections here.
	a.ln.Close()
	<-a.done
	os.Remove(a.path)
}

func (d *Daemon) adminHandler(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/admin/reload" {
		ctx.Error(`{"error":"not found"}`, fasthttp.StatusNotFound)
		return
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		ctx.Error(`{"error":"use POST"}`, fasthttp.StatusMethodNotAllowed)
		return
	}
	res, err := d.reloadAndWait(context.Background(), "admin")
	ctx.SetContentType("application/json")
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		res = ReloadResult{Result: resultFailure, Error: err.Error()}
	} else if res.Result == resultFailure {
		ctx.SetStatusCode(fasthttp.StatusUnprocessableEntity)
	}
	b, _ := json.Marshal(res)
	ctx.SetBody(b)
}

// RequestReload asks the daemon listening on the admin socket at path to
// reload, and returns what the reload did. A reload that failed is an
// error whose message is the daemon's.
func RequestReload(ctx context.Context, path string) (ReloadResult, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", path)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://aiassist/admin/reload", nil)
	if err != nil {
		return ReloadResult{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("cannot reach the daemon on %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ReloadResult{}, err
	}
	var res ReloadResult
	if err := json.Unmarshal(body, &res); err != nil {
		return ReloadResult{}, fmt.Errorf("unexpected answer from the daemon (%s): %q", resp.Status, body)
	}
	if res.Result == resultFailure {
		return res, errors.New(res.Error)
	}
	return res, nil
}
