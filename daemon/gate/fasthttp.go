package gate

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// This file is the thin fasthttp edge: the rest of the package knows no
// server.

var _ Header = (*fasthttp.RequestHeader)(nil)

// FromFastHTTP builds the gate's view of a routed request. loopback says
// whether the listener is on a loopback address. A peer that is not TCP
// (a unix socket) is a local process and counts as 127.0.0.1. The body is
// taken only for a route whose content is not ContentNone, so a request
// to a route without one never has its body read.
func FromFastHTTP(ctx *fasthttp.RequestCtx, loopback bool, route Route, model string, content Content) Request {
	peer := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr()
	}
	var body []byte
	if content != ContentNone {
		body = ctx.PostBody()
	}
	return Request{
		Peer:     peer,
		Loopback: loopback,
		Header:   &ctx.Request.Header,
		Host:     string(ctx.Host()),
		Method:   methodString(ctx.Method()),
		Route:    route,
		Model:    model,
		Content:  content,
		Body:     body,
	}
}

// methodString returns the usual methods without allocating.
func methodString(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	}
	return string(m)
}

// SetCORS adds the decision's headers to the response.
func SetCORS(ctx *fasthttp.RequestCtx, d CORS) {
	for _, h := range d.Headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
}
