package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/api/ui"
	"github.com/aiassist/aiassist/daemon/gate"
)

var inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)

func checkStrictHeaders(t *testing.T, path string, r reply) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": ui.Policy,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", path, k, got, want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: CSP %q", path, csp)
	}
}

// TestPages: every page and asset is served with the strict headers and
// its type; page files are not served under /ui/, unknown assets are the
// one 404, an unchanged asset is a 304, and ui.enabled false turns all of
// it off.
func TestPages(t *testing.T) {
	st := &State{}
	ts := serve(t, st, serverOptions{status: func(st *State) any { return map[string]uint64{"generation": st.Generation} }})
	for path, typ := range map[string]string{
		"/": "text/html", "/chat": "text/html", "/status": "text/html",
		"/ui/chat.js": "text/javascript", "/ui/status.js": "text/javascript", "/ui/markdown.js": "text/javascript",
		"/ui/common.js": "text/javascript", "/ui/style.css": "text/css", "/ui/icon.svg": "image/svg+xml",
		"/status.json": "application/json",
	} {
		r := ts.get(t, path)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), typ) {
			t.Errorf("GET %s: %d %s, want 200 %s", path, r.status, r.header.Get("Content-Type"), typ)
		}
		checkStrictHeaders(t, path, r)
		if et := r.header.Get("ETag"); et != "" {
			if r := ts.do(t, "GET", path, nil, map[string]string{"If-None-Match": et}); r.status != 304 {
				t.Errorf("GET %s with its ETag: %d, want 304", path, r.status)
			}
		}
	}
	for _, path := range []string{"/ui/chat.html", "/ui/nothing.js", "/ui/", "/ui/../chat.html", "/chat/x"} {
		if r := ts.get(t, path); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
	if r := ts.post(t, "/chat", "{}"); r.status != 405 {
		t.Errorf("POST /chat: %d, want 405", r.status)
	}
	// No page script is inline: the CSP would block it.
	for _, path := range []string{"/", "/status"} {
		body := string(ts.get(t, path).body)
		if strings.Contains(body, "<script>") || inlineHandler.MatchString(body) || strings.Contains(body, "style=") {
			t.Errorf("%s has inline script or style", path)
		}
	}
	// A second server: the first one's goroutines still read st.
	ts = serve(t, &State{NoUI: true}, serverOptions{})
	for _, path := range []string{"/", "/chat", "/status", "/ui/chat.js", "/status.json"} {
		if r := ts.get(t, path); r.status != 404 {
			t.Errorf("ui off: GET %s: %d, want 404", path, r.status)
		}
	}
}

// TestStatusScope: with keys configured, the pages stay open but the
// status data needs a key with scope "admin".
func TestStatusScope(t *testing.T) {
	admin, caller := gate.NewKey(), gate.NewKey()
	g, err := gate.New(gate.Options{Keys: []gate.Key{
		{Name: "ops", Hash: gate.HashKey(admin), Scopes: []string{gate.ScopeAdmin}},
		{Name: "app", Hash: gate.HashKey(caller)},
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, &State{Gate: g, Generation: 7}, serverOptions{status: func(st *State) any { return map[string]uint64{"generation": st.Generation} }})
	if r := ts.get(t, "/chat"); r.status != 200 {
		t.Fatalf("GET /chat with auth on: %d, want 200", r.status)
	}
	checkError(t, ts.get(t, "/status.json"), 401, "authentication_error", "missing_credential", "")
	checkError(t, ts.do(t, "GET", "/status.json", nil, map[string]string{"Authorization": "Bearer " + caller}), 403, "permission_error", "insufficient_scope", `"admin"`)
	r := ts.do(t, "GET", "/status.json", nil, map[string]string{"X-API-Key": admin})
	var doc struct{ Generation uint64 }
	if r.status != 200 || json.Unmarshal(r.body, &doc) != nil || doc.Generation != 7 {
		t.Fatalf("GET /status.json with the admin key: %d %s", r.status, r.body)
	}
	checkStrictHeaders(t, "/status.json", r)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("/status.json Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
	}
}
