package route

import "testing"

func TestTableMatch(t *testing.T) {
	var tb Table
	infer := &Route{Name: "/v2/models/{name}/infer", Paths: []string{"/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"}}
	meta := &Route{Name: "/v2/models/{name}"}
	live := &Route{Name: "/v2/health/live"}
	one := &Route{Name: "/v1/models/{name}", Paths: []string{"/v1/models/{name...}"}}
	tb.Add(live, meta, infer, one)
	f := func(path string, want *Route, params ...string) {
		t.Helper()
		r := &Request{}
		got := tb.Match(r, path)
		if got != want {
			t.Fatalf("Match(%q) = %v, want %v", path, got, want)
		}
		for i := 0; i < len(params); i += 2 {
			if v := r.Param(params[i]); v != params[i+1] {
				t.Errorf("Match(%q): %s = %q, want %q", path, params[i], v, params[i+1])
			}
		}
	}
	f("/v2/health/live", live)
	f("/v2/health/live/", nil)
	f("/v2/health", nil)
	f("/v2/models/demo", meta, "name", "demo", "version", "")
	f("/v2/models/demo/infer", infer, "name", "demo")
	f("/v2/models/demo/versions/1/infer", infer, "name", "demo", "version", "1")
	f("/v2/models/demo/versions/infer", nil)
	f("/v2/models//infer", nil)
	f("/v2/models/", nil)
	f("/v2/models/demo/explain", nil)
	f("/v1/models/org/model", one, "name", "org/model")
	f("/v1/models/", nil)
	f("/", nil)
	f("", nil)
}
