// Package ui serves the built-in web pages: a chat page for the team (/
// and /chat) and a status page for the operator (/status, with its data
// at /status.json). The pages are static files embedded in the binary; all
// they show comes from the API itself (/v1/models, /v1/chat/completions,
// /status.json), so a page holds no data and needs no credential, while
// the data keeps its own: model calls need "model:call", the status data
// "admin", whenever auth is on.
//
// Every answer carries a Content-Security-Policy that allows only the
// server's own scripts and styles (no inline script, no eval, no other
// origin), so even markup that slipped into the page could not run.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/api/route"
)

//go:embed assets
var assets embed.FS

// Policy is the Content-Security-Policy of every page and asset.
const Policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// StatusRoute is the route of the status data.
const StatusRoute = "/status.json"

// pages maps each page route to its file.
var pages = map[string]string{"/": "chat.html", "/chat": "chat.html", "/status": "status.html"}

// file is one embedded asset, ready to send.
type file struct {
	body        []byte
	contentType string
	etag        string
}

var files = load()

func load() map[string]file {
	out := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "assets/")] = file{body: b, contentType: contentType(p), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return out
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// IsPage tells whether a route name is one of the pages or their assets,
// which the gate lets through without a credential.
func IsPage(name string) bool {
	_, ok := pages[name]
	return ok || name == assetRoute
}

const assetRoute = "/ui/{file}"

// Routes returns the page routes and the status data route; status
// builds the status document of the state a request holds.
func Routes(status func(st *route.State) any) []*route.Route {
	var rs []*route.Route
	for _, name := range []string{"/", "/chat", "/status"} {
		f := files[pages[name]]
		rs = append(rs, &route.Route{Name: name, Method: "GET", Resolve: serveFile(func(*route.Request) (file, bool) { return f, true })})
	}
	rs = append(rs, &route.Route{Name: assetRoute, Method: "GET", Resolve: serveFile(func(r *route.Request) (file, bool) {
		name := r.Param("file")
		if strings.HasSuffix(name, ".html") {
			return file{}, false
		}
		f, ok := files[name]
		return f, ok
	})})
	rs = append(rs, &route.Route{Name: StatusRoute, Method: "GET", Resolve: func(r *route.Request) (route.Handler, error) {
		if r.State.NoUI {
			return nil, route.NoRoute(string(r.Ctx.Path()))
		}
		return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
			SetHeaders(&r.Ctx.Response.Header)
			r.Ctx.Response.Header.Set("Cache-Control", "no-store")
			return nil, route.WriteJSON(r.Ctx, fasthttp.StatusOK, status(r.State))
		}), nil
	}})
	return rs
}

func serveFile(pick func(r *route.Request) (file, bool)) func(r *route.Request) (route.Handler, error) {
	return func(r *route.Request) (route.Handler, error) {
		f, ok := pick(r)
		if r.State.NoUI || !ok {
			return nil, route.NoRoute(string(r.Ctx.Path()))
		}
		return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
			h := &r.Ctx.Response.Header
			SetHeaders(h)
			h.Set("Cache-Control", "no-cache")
			h.Set("ETag", f.etag)
			if string(r.Ctx.Request.Header.Peek("If-None-Match")) == f.etag {
				r.Ctx.SetStatusCode(fasthttp.StatusNotModified)
				return nil, nil
			}
			r.Ctx.SetContentType(f.contentType)
			r.Ctx.SetBody(f.body)
			return nil, nil
		}), nil
	}
}

// SetHeaders sets the strict headers every page, asset and status answer
// carries.
func SetHeaders(h *fasthttp.ResponseHeader) {
	h.Set("Content-Security-Policy", Policy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
