package gate

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestFastHTTP runs the gate behind a real fasthttp server on loopback:
// FromFastHTTP reads the request, WriteRefusal answers.
func TestFastHTTP(t *testing.T) {
	f := newFixture(t, func(o *Options, _ *fixture) {
		o.CORSOrigins = []string{"https://app.example.com"}
		o.TrustedProxies = []string{"127.0.0.1"}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		d := f.g.CORS(string(ctx.Request.Header.Peek("Origin")), string(ctx.Method()), string(ctx.Request.Header.Peek("Access-Control-Request-Method")))
		if d.Preflight {
			if d.Refusal != nil {
				WriteRefusal(ctx, d.Refusal)
				return
			}
			SetCORS(ctx, d)
			ctx.SetStatusCode(204)
			return
		}
		SetCORS(ctx, d)
		req := FromFastHTTP(ctx, true, RouteInference, "qwen", ContentAuto)
		p, r := f.g.Check(req)
		if r != nil {
			WriteRefusal(ctx, r)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"principal":"` + p.Name + `","client":"` + f.g.ClientIP(req.Peer, req.Header).String() + `"}`)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	url := "http://" + ln.Addr().String() + "/v1/chat/completions"
	c := &fasthttp.Client{}

	do := func(method string, hdrs map[string]string, body string) *fasthttp.Response {
		t.Helper()
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI(url)
		req.Header.SetMethod(method)
		for k, v := range hdrs {
			if k == "Host" {
				req.UseHostHeader = true
				req.Header.SetHost(v)
				continue
			}
			req.Header.Add(k, v)
		}
		req.SetBodyString(body)
		resp := fasthttp.AcquireResponse()
		if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	key := f.keys["team-a-2026q4"]
	jsonCT := map[string]string{"Content-Type": "application/json"}

	resp := do("POST", jsonCT, `{}`)
	if resp.StatusCode() != 401 || string(resp.Header.Peek("WWW-Authenticate")) != bearerChallenge {
		t.Fatalf("no key: %d %s", resp.StatusCode(), resp.Header.String())
	}
	var eb ErrorBody
	if err := json.Unmarshal(resp.Body(), &eb); err != nil || eb.Error.Code != "missing_credential" || eb.Error.Type != typeAuthentication {
		t.Fatalf("error body %s: %v", resp.Body(), err)
	}
	if string(resp.Header.ContentType()) != "application/json" {
		t.Fatalf("content type %s", resp.Header.ContentType())
	}

	resp = do("POST", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + key}, `{"model":"qwen"}`)
	if resp.StatusCode() != 200 || !strings.Contains(string(resp.Body()), `"principal":"team-a"`) {
		t.Fatalf("with key: %d %s", resp.StatusCode(), resp.Body())
	}

	resp = do("POST", map[string]string{"Content-Type": "text/plain", "X-API-Key": key}, `{}`)
	if resp.StatusCode() != 415 {
		t.Fatalf("text/plain: %d %s", resp.StatusCode(), resp.Body())
	}

	resp = do("POST", map[string]string{"Content-Type": "application/json", "X-API-Key": key, "Host": "evil.example"}, `{}`)
	if resp.StatusCode() != 403 || !strings.Contains(string(resp.Body()), "host_not_allowed") {
		t.Fatalf("foreign Host: %d %s", resp.StatusCode(), resp.Body())
	}

	// Two X-Forwarded-For lines from the trusted proxy (127.0.0.1) are
	// read as one list; the rightmost untrusted entry is the client.
	req := fasthttp.AcquireRequest()
	req.SetRequestURI(url)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("X-API-Key", key)
	req.Header.Add("X-Forwarded-For", "192.0.2.1")
	req.Header.Add("X-Forwarded-For", "10.3.3.3")
	resp = fasthttp.AcquireResponse()
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || !strings.Contains(string(resp.Body()), `"client":"10.3.3.3"`) {
		t.Fatalf("XFF: %d %s", resp.StatusCode(), resp.Body())
	}

	// CORS.
	resp = do("OPTIONS", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}, "")
	if resp.StatusCode() != 204 || string(resp.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" {
		t.Fatalf("preflight: %d %s", resp.StatusCode(), resp.Header.String())
	}
	resp = do("OPTIONS", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, "")
	if resp.StatusCode() != 403 || len(resp.Header.Peek("Access-Control-Allow-Origin")) != 0 {
		t.Fatalf("foreign preflight: %d %s", resp.StatusCode(), resp.Header.String())
	}
	resp = do("POST", map[string]string{"Content-Type": "application/json", "X-API-Key": key, "Origin": "https://evil.example"}, `{}`)
	if resp.StatusCode() != 200 || strings.Contains(resp.Header.String(), "Access-Control") {
		t.Fatalf("foreign origin got CORS headers: %s", resp.Header.String())
	}
	f.assertNoSecret(t, "log", f.logBuf.String())
}

// The API answers refusals with route.WriteError, the one error writer;
// these are the test server's.

// ErrorBody is the JSON error every refusal is sent as.
type ErrorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
		Param   string `json:"param,omitempty"`
	} `json:"error"`
}

// Body renders the refusal's JSON error.
func (r *Refusal) Body() []byte {
	var b ErrorBody
	b.Error.Message, b.Error.Type, b.Error.Code, b.Error.Param = r.Message, r.Type, r.Code, r.Param
	out, _ := json.Marshal(b)
	return out
}

// WriteRefusal sends r as the response.
func WriteRefusal(ctx *fasthttp.RequestCtx, r *Refusal) {
	ctx.SetStatusCode(r.Status)
	ctx.SetContentType("application/json")
	if r.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
	if r.Challenge != "" {
		ctx.Response.Header.Set("WWW-Authenticate", r.Challenge)
	}
	ctx.SetBody(r.Body())
}
