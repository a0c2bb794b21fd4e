package gate

import (
	"fmt"
	"strings"
)

// CORS is the decision for one request's Origin.
type CORS struct {
	// Allowed means the origin is listed: the response gets
	// Access-Control-Allow-Origin (and Vary: Origin); otherwise it gets
	// no Access-Control-* header at all.
	Allowed bool
	// Preflight means the request is a CORS preflight (OPTIONS with
	// Access-Control-Request-Method) that the edge answers itself with
	// 204 and Headers, without routing or authentication.
	Preflight bool
	// Headers are the response headers to set, in order.
	Headers [][2]string
	// Refusal answers a preflight from an origin that is not listed.
	Refusal *Refusal
}

// corsPolicy is server.cors_origins.
type corsPolicy struct {
	origins map[string]bool // lowercase scheme://host[:port]
	any     bool            // "*" listed
}

func newCORSPolicy(origins []string) (corsPolicy, error) {
	p := corsPolicy{origins: map[string]bool{}}
	for i, o := range origins {
		o = strings.TrimSpace(o)
		if o == "*" {
			p.any = true
			continue
		}
		scheme, rest, ok := strings.Cut(o, "://")
		if !ok || scheme != "http" && scheme != "https" || rest == "" || strings.ContainsAny(rest, "/?# ") {
			return corsPolicy{}, fmt.Errorf("entry %d %s: want an origin like https://app.example.com (scheme, host, optional port; no path)", i, echo(o))
		}
		p.origins[strings.ToLower(o)] = true
	}
	return p, nil
}

// Allowed methods and headers a preflight may ask for.
const (
	corsMethods = "GET, POST, OPTIONS"
	corsHeaders = "Authorization, Content-Type, X-API-Key, Inference-Header-Content-Length"
	corsMaxAge  = "600"
)

// decide answers for a request with the given Origin, method and
// Access-Control-Request-Method.
func (p corsPolicy) decide(origin, method, requestMethod string) CORS {
	var d CORS
	if origin == "" || len(p.origins) == 0 && !p.any {
		return d
	}
	d.Preflight = method == "OPTIONS" && requestMethod != ""
	if !p.any && !p.origins[strings.ToLower(origin)] {
		if d.Preflight {
			d.Refusal = refuse(403, typePermission, "origin_not_allowed", "Origin "+echo(origin)+" is not allowed; list it in server.cors_origins")
		}
		return d
	}
	d.Allowed = true
	allow := origin
	if p.any && !p.origins[strings.ToLower(origin)] {
		allow = "*"
	}
	d.Headers = append(d.Headers, [2]string{"Access-Control-Allow-Origin", allow})
	if allow != "*" {
		d.Headers = append(d.Headers, [2]string{"Vary", "Origin"})
	}
	if d.Preflight {
		d.Headers = append(d.Headers,
			[2]string{"Access-Control-Allow-Methods", corsMethods},
			[2]string{"Access-Control-Allow-Headers", corsHeaders},
			[2]string{"Access-Control-Max-Age", corsMaxAge})
	} else {
		d.Headers = append(d.Headers, [2]string{"Access-Control-Expose-Headers", "Retry-After"})
	}
	return d
}
