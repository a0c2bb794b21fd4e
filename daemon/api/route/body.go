package route

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

// ReadBody reads the request body from the connection as it arrives, so
// memory follows the bytes received rather than the Content-Length a
// client promises, and puts it in the request for the routes to read with
// Body(). fasthttp's own Body() on a streamed request turns a read error
// into a body holding the error's text; here a body cut short or too slow
// is an error: 408 past the read timeout, 400 otherwise.
func ReadBody(ctx *fasthttp.RequestCtx) error {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return nil
	}
	var buf bytes.Buffer
	if n := ctx.Request.Header.ContentLength(); n > 0 {
		// Grow with what arrives; never reserve what is only promised.
		buf.Grow(min(n, 64<<10))
	}
	_, err := buf.ReadFrom(stream)
	ctx.Request.CloseBodyStream()
	if err != nil {
		var ne net.Error
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			ctx.SetConnectionClose()
			return NewError(fasthttp.StatusRequestTimeout, "invalid_request_error", "request_timeout", "the request body did not arrive within server.read_timeout")
		}
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			ctx.SetConnectionClose()
			return NewError(fasthttp.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large", "request body is larger than server.max_body_bytes")
		}
		ctx.SetConnectionClose()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return NewError(fasthttp.StatusBadRequest, "invalid_request_error", "incomplete_body", "the request body ended before its Content-Length")
		}
		return NewError(fasthttp.StatusBadRequest, "invalid_request_error", "bad_request", "cannot read the request body")
	}
	ctx.Request.SetBodyRaw(buf.Bytes())
	return nil
}
