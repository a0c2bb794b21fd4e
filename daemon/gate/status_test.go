package gate

import (
	"testing"
	"time"
)

// TestPageAndStatusRoutes: the pages need no credential even with auth
// on, but the allow list still applies; the status data needs a
// credential with scope "admin".
func TestPageAndStatusRoutes(t *testing.T) {
	f := newFixture(t, func(o *Options, f *fixture) {
		o.Keys = append(o.Keys, Key{Name: "ops", Hash: HashKey(f.newKey("ops")), Scopes: []string{ScopeAdmin}})
		o.AllowIPs = []string{"127.0.0.0/8"}
	})
	get := func(rt Route, mods ...func(*Request, hdr)) func(*Request, hdr) {
		return func(r *Request, h hdr) {
			r.Route, r.Method, r.Model, r.Content, r.Body = rt, "GET", "", ContentNone, nil
			for _, m := range mods {
				m(r, h)
			}
		}
	}
	cases := []struct {
		name   string
		req    Request
		status int
		code   string
	}{
		{"page without a credential", request(get(RoutePage)), 0, ""},
		{"page from outside the allow list", request(get(RoutePage, peer("10.1.1.1"))), 403, "ip_not_allowed"},
		{"page for a foreign Host", request(get(RoutePage, func(r *Request, _ hdr) { r.Host = "evil.example"; r.Loopback = false })), 403, "host_not_allowed"},
		{"status without a credential", request(get(RouteStatus)), 401, "missing_credential"},
		{"status with a model:call key", request(get(RouteStatus, apiKey(f.keys["team-a-2026q4"]))), 403, "insufficient_scope"},
		{"status with an admin key", request(get(RouteStatus, apiKey(f.keys["ops"]))), 0, ""},
		{"inference with the admin key", request(apiKey(f.keys["ops"])), 403, "insufficient_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, r := f.g.Check(c.req)
			switch {
			case c.status == 0 && r != nil:
				t.Fatalf("refused: %d %s %s", r.Status, r.Code, r.Message)
			case c.status != 0 && r == nil:
				t.Fatalf("allowed; want %d %s", c.status, c.code)
			case c.status != 0 && (r.Status != c.status || c.code != "" && r.Code != c.code):
				t.Fatalf("got %d %s (%s); want %d %s", r.Status, r.Code, r.Message, c.status, c.code)
			}
		})
	}
}

func TestExpiringKeys(t *testing.T) {
	f := newFixture(t, nil)
	got := f.g.ExpiringKeys(100 * 24 * time.Hour)
	// "old" expired an hour ago, team-a-2026q4 expires in 90 days; the
	// others have no not_after.
	if len(got) != 2 || got[0].Name != "old" || got[1].Name != "team-a-2026q4" {
		t.Fatalf("ExpiringKeys(100d) = %+v", got)
	}
	if got := f.g.ExpiringKeys(24 * time.Hour); len(got) != 1 || got[0].Name != "old" {
		t.Fatalf("ExpiringKeys(1d) = %+v", got)
	}
}
