package schema

import (
	"net/netip"
	"path"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

// check makes the checks of cfg that CUE cannot express, each issue placed
// at the offending value in the config file.
func (c *checker) check(cfg *Config) {
	c.checkModels(cfg)
	if len(cfg.Listeners) == 0 {
		c.errorf([]string{"listeners"}, "at least one listener is required; remove listeners to listen on 127.0.0.1:8080")
	}
	c.checkListeners(cfg.Listeners)
	c.checkMetricsPath(cfg.Metrics.Path)
	c.checkDefaultModel(cfg)
	c.checkExposure(cfg)
	c.checkAPIKeys(cfg)
	c.checkJWT(cfg.Auth.JWT)
	c.checkNets([]string{"access", "allow_ips"}, cfg.Access.AllowIPs)
	c.checkNets([]string{"access", "trusted_proxies"}, cfg.Access.TrustedProxies)
	c.checkHosts(cfg.Server.AllowedHosts)
	c.checkOrigins(cfg.Server.CORSOrigins)
	c.checkLimits(cfg.Limits)
	c.checkAbuse(cfg.Abuse)
	c.checkLogging(cfg.Logging)
	c.checkAlerts(cfg)
}

// checkModels refuses a config without models. Serving none is never what
// an operator wants, and it is what an empty or cut-short file would
// otherwise mean: an editor that truncates the file before writing it, or
// a save that fails half-way, would make a reload drop every model and
// move the listener to its default.
func (c *checker) checkModels(cfg *Config) {
	if len(cfg.Models) > 0 {
		return
	}
	const msg = `the config declares no model; add one, such as models: demo: {kind: "tensor", path: "demo.onnx"} ` +
		"(an empty or cut-short file also says this: check that it was saved whole)"
	if c.data.LookupPath(cue.MakePath(cue.Str("models"))).Exists() {
		c.errorf([]string{"models"}, msg)
		return
	}
	// The file itself is at fault, not a line in it.
	c.issues = append(c.issues, Issue{Filename: c.filename, Line: 1, Column: 1, Path: "models", Msg: msg})
}

// checkMetricsPath refuses a metrics path that would hide an API route or
// that no request can reach. The API serves /v1/... (text generation,
// OpenAI-compatible) and /v2 and /v2/... (KServe, health); the server
// cleans a request's path ("//", "." and ".." segments) before routing, so
// a path not in clean form never matches.
func (c *checker) checkMetricsPath(p string) {
	at := []string{"metrics", "path"}
	const fix = `pick a path outside /v1 and /v2, such as "/metrics"`
	// Routes are judged by the path a request would have to use.
	clean := path.Clean(p)
	switch {
	case !strings.HasPrefix(p, "/"):
		// The schema's pattern admits none of these; say why anyway.
		c.errorf(at, "%q does not start with \"/\"; %s", p, fix)
	case clean == "/v1" || clean == "/v2":
		c.errorf(at, "%q is where the API serves its routes; %s", p, fix)
	case strings.HasPrefix(clean, "/v1/") || strings.HasPrefix(clean, "/v2/"):
		c.errorf(at, "%q is under %s, where the API serves its routes; %s", p, clean[:4], fix)
	case clean != p && clean+"/" != p:
		c.errorf(at, "%q is not a clean path: requests have \"//\", \".\" and \"..\" removed before they are routed, so none would reach it; write it as %q", p, clean)
	}
}

// checkDefaultModel checks that default_model names a causal-lm model.
func (c *checker) checkDefaultModel(cfg *Config) {
	name := cfg.DefaultModel
	if name == "" {
		return
	}
	at := []string{"default_model"}
	lms := cfg.modelsOfKind(KindCausalLM)
	m, ok := cfg.Models[name]
	switch {
	case !ok:
		fix := "add it under models or remove default_model"
		if len(lms) > 0 {
			fix = "add it under models or change default_model to one of: " + strings.Join(lms, ", ")
		}
		c.errorf(at, "model %q is not configured; %s", name, fix)
	case m.Kind != KindCausalLM:
		fix := "remove default_model"
		if len(lms) > 0 {
			fix = "change it to one of: " + strings.Join(lms, ", ")
		}
		c.errorf(at, "model %q is a %q model; default_model picks the model of text generation requests (/v1), so it must name a %q model: %s", name, m.Kind, KindCausalLM, fix)
	}
}

// checkListeners reports listeners that would fail to bind because an
// earlier one holds the same port on the same or an overlapping address.
func (c *checker) checkListeners(ls []Listener) {
	for i, l := range ls {
		for j := range i {
			overlap, same := overlaps(ls[j], l)
			if !overlap {
				continue
			}
			path := []string{"listeners", strconv.Itoa(i)}
			if same {
				c.errorf(path, "duplicate listener %q: listeners.%d already listens there; remove one or change its port", l.HostPort(), j)
			} else {
				c.errorf(path, "listener %q overlaps listeners.%d (%q) on the same port; change one port", l.HostPort(), j, ls[j].HostPort())
			}
		}
	}
}

// addrInfo is what a listen address binds on its port: every address (IPv4
// and IPv6), every IPv4 address, or one address.
type addrInfo struct {
	all, allV4 bool
	addr       netip.Addr
}

func parseAddr(s string) addrInfo {
	switch s {
	case "":
		return addrInfo{all: true}
	case "localhost":
		// net.Listen binds only the first address a name resolves to,
		// and Go resolves "localhost" to 127.0.0.1 first.
		return addrInfo{addr: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return addrInfo{} // the schema admits only IP literals here
	}
	a = a.Unmap()
	switch {
	case a == netip.IPv6Unspecified():
		// Go listens dual-stack on "::", taking IPv4 as well.
		return addrInfo{all: true}
	case a == netip.IPv4Unspecified():
		return addrInfo{allV4: true}
	}
	return addrInfo{addr: a}
}

// overlaps reports whether two listeners cannot both bind, and if so
// whether they name the same address.
func overlaps(a, b Listener) (overlap, same bool) {
	if a.Port != b.Port {
		return false, false
	}
	x, y := parseAddr(a.Address), parseAddr(b.Address)
	switch {
	case x == y:
		return true, true
	case x.all || y.all:
		return true, false
	case x.allV4:
		return y.addr.Is4(), false
	case y.allV4:
		return x.addr.Is4(), false
	}
	return false, false
}
