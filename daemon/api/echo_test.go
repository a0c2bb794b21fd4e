package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/engine"
)

// TestEchoBounded is defect 8: a request value goes back into a message
// cut to route.MaxEcho bytes and "…", on every route that echoes one. The
// server takes 4 MiB bodies and headers here, so a 1 MiB value reaches
// the handler instead of being refused by fasthttp.
func TestEchoBounded(t *testing.T) {
	st, _ := tinyState(t, nil)
	st.Models["demo"] = loadModel(t, engine.TensorModelOptions{Name: "demo", Path: demoPath(t), Batching: batching})
	ts := serve(t, st, serverOptions{maxBody: 4 << 20, readBuffer: 4 << 20})
	// Model names are 1 MiB; other values 256 KiB, which is as far past
	// the cap and decodes faster under -race.
	model := strings.Repeat("m", 1<<20)
	big := strings.Repeat("m", 256<<10)
	capped := strings.Repeat("m", route.MaxEcho) + "…"
	digits := strings.Repeat("7", 256<<10)
	input := func(name, datatype, data string) string {
		return fmt.Sprintf(`{"inputs":[{"name":%q,"shape":[1,4],"datatype":%q,"data":%s}]}`, name, datatype, data)
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		// echo is the value's capped form, as the message holds it;
		// "" for messages that do not repeat the value at all.
		echo string
	}{
		{"model metadata", "GET", "/v2/models/" + model, "", 404, capped},
		{"model ready", "GET", "/v2/models/" + model + "/ready", "", 404, capped},
		{"infer", "POST", "/v2/models/" + model + "/infer", input("input", "FP32", "[1,2,3,4]"), 404, capped},
		{"infer with GET", "GET", "/v2/models/" + model + "/infer", "", 405, "/v2/models/" + capped[:route.MaxEcho-len("/v2/models/")] + "…"},
		{"version", "GET", "/v2/models/demo/versions/" + big, "", 404, capped},
		{"v1 model", "GET", "/v1/models/" + model, "", 404, capped},
		{"no route", "GET", "/" + model, "", 404, "/" + capped[:route.MaxEcho-1] + "…"},
		{"generate model", "POST", "/v1/generate", `{"model":"` + model + `","prompt":"a"}`, 404, capped},
		{"completions model", "POST", "/v1/completions", `{"model":"` + model + `","prompt":"a"}`, 404, capped},
		{"chat model", "POST", "/v1/chat/completions", `{"model":"` + model + `","messages":[{"role":"user","content":"a"}]}`, 404, capped},
		{"v1 unknown field", "POST", "/v1/generate", `{"prompt":"a","` + big + `":1}`, 400, capped},
		{"v1 number", "POST", "/v1/generate", `{"prompt":"a","max_tokens":` + digits + `}`, 400, strings.Repeat("7", route.MaxEcho-len("number ")) + "…"},
		{"seed", "POST", "/v1/generate", `{"prompt":"a","seed":` + digits + `}`, 400, strings.Repeat("7", route.MaxEcho) + "…"},
		{"stop", "POST", "/v1/generate", `{"prompt":"a","stop":"` + big + `"}`, 400, ""},
		{"role", "POST", "/v1/chat/completions", `{"messages":[{"role":"` + big + `","content":"a"}]}`, 400, capped},
		{"content part type", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"` + big + `","text":"a"}]}]}`, 400, capped},
		{"kserve unknown field", "POST", "/v2/models/demo/infer", `{"inputs":[],"` + big + `":1}`, 400, capped},
		{"input name", "POST", "/v2/models/demo/infer", `{"inputs":[` + strings.Repeat(`{"name":"`+big+`","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},`, 2) + `{}]}`, 400, capped},
		{"datatype", "POST", "/v2/models/demo/infer", input("input", big, "[1,2,3,4]"), 400, capped},
		{"data element", "POST", "/v2/models/demo/infer", input("input", "FP32", "[1,2,3,"+digits+"]"), 400, strings.Repeat("7", route.MaxEcho) + "…"},
		{"bool element", "POST", "/v2/models/demo/infer", input("input", "BOOL", "[true,"+digits+",true,true]"), 400, strings.Repeat("7", route.MaxEcho) + "…"},
		{"output name", "POST", "/v2/models/demo/infer", strings.TrimSuffix(input("input", "FP32", "[1,2,3,4]"), "}") + `,"outputs":[{"name":"` + big + `"}]}`, 400, capped},
		{"shape", "POST", "/v2/models/demo/infer", `{"inputs":[{"name":"input","shape":[1` + strings.Repeat(",1", 20000) + `,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := ts.do(t, c.method, c.path, body, nil)
			if r.status != c.status {
				t.Errorf("status %d, want %d: %.300s", r.status, c.status, r.body)
			}
			if len(r.body) > 1024 {
				t.Errorf("a %d-byte error body: %.300s…", len(r.body), r.body)
			}
			if c.echo != "" && !strings.Contains(string(r.body), c.echo) {
				t.Errorf("body %s does not hold the capped value %q", r.body, c.echo)
			}
		})
	}
}

// TestHeaderErrorKeepsHeadersBack sends a request line longer than the
// header buffer, with a key in a header: fasthttp refuses it before the
// handler, and its error quotes the start of the request. The answer
// must not.
func TestHeaderErrorKeepsHeadersBack(t *testing.T) {
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{}}, serverOptions{})
	r := ts.do(t, "GET", "/v2/models/"+strings.Repeat("m", 8<<10), nil, map[string]string{"Authorization": "Bearer sk-header-secret"})
	checkError(t, r, 431, "invalid_request_error", "header_too_large", "headers are larger")
	if strings.Contains(string(r.body), "sk-header-secret") {
		t.Errorf("the error body repeats the header: %s", r.body)
	}
	// An invalid header value makes fasthttp quote it.
	r = ts.raw(t, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Api-Key: sk-raw\x01secret\r\n\r\n")
	checkError(t, r, 400, "invalid_request_error", "bad_request", "cannot parse the HTTP request")
	if strings.Contains(string(r.body), "sk-raw") || strings.Contains(string(r.body), "secret") {
		t.Errorf("the error body repeats the header: %s", r.body)
	}
}

// raw sends req as bytes, for requests no HTTP client would send.
func (ts *testServer) raw(t *testing.T, req string) reply {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testDeadline))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}
