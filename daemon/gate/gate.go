// Package gate decides whether a request may go on: screening (content
// type and encoding, JSON text and depth, Host, CORS), IP allow lists,
// authentication by API key or JWT, the per-model ACL and abuse
// detection. Every check returns nil or a *Refusal; the package knows
// nothing of HTTP servers, so the edge builds a Request from whatever it
// serves with (fasthttp.go does it for fasthttp) and writes the Refusal.
//
// A Gate is built from Options once per config generation and is safe for
// concurrent use; nothing in a request's way allocates much or takes a
// lock for long.
package gate

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Route is the kind of route a request was routed to. The zero Route is
// inference, the most guarded, so that a route the edge forgets to name
// is not left open.
type Route uint8

const (
	RouteInference Route = iota // model calls and model lists
	RouteHealth                 // /v2/health/*: never authenticated
	RouteMetrics                // the metrics path: authenticated if MetricsRequireAuth
	// RoutePage is a built-in web page or its assets: never
	// authenticated (a browser cannot send a key on navigation, and the
	// pages hold no data), but the Host check and IP allow list apply.
	RoutePage
	// RouteStatus is the operator's status data: authenticated with
	// scope ScopeAdmin whenever inference needs a credential.
	RouteStatus
)

// Content is what body a route takes.
type Content uint8

const (
	// ContentAuto is JSON for POST, PUT and PATCH, and none otherwise.
	ContentAuto Content = iota
	// ContentNone checks no body.
	ContentNone
	// ContentJSON needs Content-Type application/json.
	ContentJSON
	// ContentKServe is JSON, or KServe's binary extension:
	// application/octet-stream with Inference-Header-Content-Length
	// giving the length of the JSON header that starts the body.
	ContentKServe
)

// Header reads a request header by name. *fasthttp.RequestHeader and
// http.Header (through a small adapter) satisfy it; a Header that also
// has PeekAll(name string) [][]byte gets every X-Forwarded-For line read.
type Header interface {
	Peek(name string) []byte
}

// Request is what the gate looks at, after routing.
type Request struct {
	Peer netip.Addr // the TCP peer
	// Client is the client's address as ClientIP gives it, for a caller
	// that needs it too and has it already; zero has Check work it out.
	Client   netip.Addr
	Loopback bool // the listener's address is a loopback address
	Header   Header
	Host     string
	Method   string
	Route    Route
	Model    string // the model asked for; "" for routes that name none
	Content  Content
	Body     []byte
}

// Options configures a Gate; the daemon translates its config into it.
type Options struct {
	// Open is auth.open: inference without a credential on a non-loopback
	// listener, said explicitly. It conflicts with configured keys or JWT.
	Open bool
	Keys []Key
	// JWT, when non-nil, accepts bearer tokens.
	JWT      *JWTOptions
	Rotation RotationOptions
	// AllowIPs is access.allow_ips; empty allows every address.
	AllowIPs []string
	// TrustedProxies is access.trusted_proxies: peers whose
	// X-Forwarded-For is believed.
	TrustedProxies []string
	// MetricsRequireAuth makes the metrics route need a credential.
	MetricsRequireAuth bool
	// AllowedHosts is server.allowed_hosts.
	AllowedHosts []string
	// CORSOrigins is server.cors_origins.
	CORSOrigins []string
	Abuse       AbuseOptions
	// MaxJSONDepth bounds JSON nesting; default DefaultMaxJSONDepth.
	MaxJSONDepth int
	// RequiredScope is what inference needs; default ScopeModelCall.
	RequiredScope string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Carry, when set, is the Gate this one replaces: its abuse
	// windows and blocks go on in the new Gate, so a reload lifts none.
	Carry *Gate
}

// Gate is one config generation's request checks.
type Gate struct {
	keys        []keyEntry
	keyList     []Key
	jwt         *jwtAuth
	allow       IPList
	trusted     IPList
	hosts       HostList
	cors        corsPolicy
	abuse       *abuseCheck
	needCred    bool
	metricsAuth bool
	depth       int
	scope       string
	rotation    RotationOptions
	now         func() time.Time
	log         *slog.Logger
	failures    map[string]*metrics.Counter
	expiry      *metrics.Set
}

// Authentication failure reasons: the label values of
// aiassist_auth_failures_total.
var failureReasons = []string{
	"missing_credential", "malformed_key", "malformed_authorization", "unknown_key",
	"key_expired", "key_not_yet_valid", "key_ip_not_allowed", "jwt_not_configured",
	"token_malformed", "token_unknown_kid", "token_alg", "token_signature", "token_claims",
	"token_expired", "token_not_yet_valid", "token_issuer", "token_audience", "token_invalid",
}

// New builds a Gate. Counters go to set (GetOrCreate, so that one set
// may serve every generation); the key expiry gauges go to KeyMetrics,
// which the caller registers while this Gate serves.
func New(opts Options, logger *slog.Logger, set *metrics.Set) (*Gate, error) {
	if logger == nil {
		return nil, errors.New("gate: a logger is needed")
	}
	if set == nil {
		return nil, errors.New("gate: a metrics set is needed")
	}
	g := &Gate{
		now:         opts.Now,
		log:         logger,
		depth:       opts.MaxJSONDepth,
		scope:       opts.RequiredScope,
		metricsAuth: opts.MetricsRequireAuth,
		rotation:    opts.Rotation.withDefaults(),
		failures:    map[string]*metrics.Counter{},
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.depth <= 0 {
		g.depth = DefaultMaxJSONDepth
	}
	if g.scope == "" {
		g.scope = ScopeModelCall
	}
	var err error
	if g.keys, err = newKeyEntries(opts.Keys); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	g.keyList = append([]Key(nil), opts.Keys...)
	if opts.JWT != nil {
		var skipped []string
		if g.jwt, skipped, err = newJWTAuth(opts.JWT, g.now); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		for _, s := range skipped {
			logger.Warn("jwks key left out", "detail", s)
		}
	}
	g.needCred = len(g.keys) > 0 || g.jwt != nil
	if opts.Open && g.needCred {
		return nil, errors.New("auth: open is true but api_keys or jwt are configured; remove open (credentials are then required) or the credentials")
	}
	if g.metricsAuth && !g.needCred {
		return nil, errors.New("metrics: require_auth is true but no api key or jwt is configured to authenticate with")
	}
	if g.allow, err = ParseIPList(opts.AllowIPs); err != nil {
		return nil, fmt.Errorf("access.allow_ips: %w", err)
	}
	if g.trusted, err = ParseIPList(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("access.trusted_proxies: %w", err)
	}
	if g.hosts, err = ParseHostList(opts.AllowedHosts); err != nil {
		return nil, fmt.Errorf("server.allowed_hosts: %w", err)
	}
	if g.cors, err = newCORSPolicy(opts.CORSOrigins); err != nil {
		return nil, fmt.Errorf("server.cors_origins: %w", err)
	}
	var carry *abuse
	if opts.Carry != nil {
		carry = opts.Carry.abuse.abuse
	}
	if g.abuse, err = newAbuseCheck(opts.Abuse, logger, set, carry); err != nil {
		return nil, err
	}
	for _, r := range failureReasons {
		g.failures[r] = set.GetOrCreateCounter(`aiassist_auth_failures_total{reason="` + r + `"}`)
	}
	g.expiry = keyExpirySet(opts.Keys)
	return g, nil
}

// RequiresCredential tells whether inference needs a key or token; when
// it does not, the daemon allows only loopback listeners unless Open.
func (g *Gate) RequiresCredential() bool { return g.needCred }

// KeyMetrics holds aiassist_auth_key_expiry_timestamp_seconds{key} of
// this generation's keys. Register it (metrics.RegisterSet) when the Gate
// starts serving and unregister it when it is replaced, so that a removed
// key's series goes with it.
func (g *Gate) KeyMetrics() *metrics.Set { return g.expiry }

// RotationNotices lists the keys to rotate now; the daemon logs them at
// each reload.
func (g *Gate) RotationNotices() []Notice {
	return RotationNotices(g.keyList, g.rotation, g.now())
}

// CORS decides the CORS headers for a request; see the CORS type.
func (g *Gate) CORS(origin, method, requestMethod string) CORS {
	return g.cors.decide(origin, method, requestMethod)
}

// ClientIP is the address the request comes from, X-Forwarded-For
// believed only from trusted proxies.
func (g *Gate) ClientIP(peer netip.Addr, h Header) netip.Addr {
	return ClientIP(peer, forwardedFor(h), g.trusted)
}

func forwardedFor(h Header) []byte {
	if h == nil {
		return nil
	}
	if all, ok := h.(interface{ PeekAll(string) [][]byte }); ok {
		vs := all.PeekAll("X-Forwarded-For")
		if len(vs) > 1 {
			return bytes.Join(vs, []byte{','})
		}
		if len(vs) == 1 {
			return vs[0]
		}
		return nil
	}
	return h.Peek("X-Forwarded-For")
}

func peek(h Header, name string) []byte {
	if h == nil {
		return nil
	}
	return h.Peek(name)
}

func (g *Gate) fail(r *Refusal) *Refusal {
	if c := g.failures[r.Reason]; c != nil {
		c.Inc()
	}
	return r
}

// Check runs a routed request through the gate: screening, the IP allow
// list, authentication, the ACL, then the body scan (last, so that an
// unauthenticated client cannot make the gate read its body). It returns
// the principal, or the refusal to send.
func (g *Gate) Check(req Request) (*Principal, *Refusal) {
	h := req.Header
	if req.Route != RouteHealth {
		if r := CheckHost(req.Host, req.Loopback, g.hosts); r != nil {
			return nil, r
		}
	}
	if r := CheckContentEncoding(peek(h, "Content-Encoding")); r != nil {
		return nil, r
	}
	content := req.Content
	if content == ContentAuto {
		content = ContentNone
		switch req.Method {
		case "POST", "PUT", "PATCH":
			content = ContentJSON
		}
	}
	var jsonPart []byte
	switch content {
	case ContentJSON:
		if r := CheckContentType(peek(h, "Content-Type")); r != nil {
			return nil, r
		}
		jsonPart = req.Body
	case ContentKServe:
		var r *Refusal
		if jsonPart, r = kserveJSON(peek(h, "Content-Type"), peek(h, "Inference-Header-Content-Length"), req.Body); r != nil {
			return nil, r
		}
	}
	if req.Route == RouteHealth {
		return anonymous, nil
	}

	now := g.now()
	nowNano := now.UnixNano()
	ip := req.Client
	if !ip.IsValid() {
		ip = ClientIP(req.Peer, forwardedFor(h), g.trusted)
	}
	inference := req.Route == RouteInference
	status := req.Route == RouteStatus
	if g.allow.Len() > 0 && !g.allow.Contains(ip) {
		return nil, refuse(403, typePermission, "ip_not_allowed", "client address "+ip.String()+" is not in access.allow_ips")
	}
	p := anonymous
	if (inference || status) && g.needCred || req.Route == RouteMetrics && g.metricsAuth {
		if r := g.abuse.ipRequest(nowNano, ip, inference); r != nil {
			return nil, r
		}
		var r *Refusal
		if p, r = g.authenticate(h, now, ip); r != nil {
			return nil, r
		}
		if r := g.abuse.keyRequest(nowNano, p.subject, p.KeyID, ip, inference); r != nil {
			return nil, r
		}
	} else if inference {
		if r := g.abuse.ipRequest(nowNano, ip, true); r != nil {
			return nil, r
		}
	}
	if status && !p.HasScope(ScopeAdmin) {
		return nil, refuse(403, typePermission, "insufficient_scope", "the credential lacks scope "+strconv.Quote(ScopeAdmin)+", which the status page needs")
	}
	if !inference {
		return p, nil
	}
	if !p.HasScope(g.scope) {
		return nil, refuse(403, typePermission, "insufficient_scope", "the credential lacks scope "+strconv.Quote(g.scope)+", which model calls need")
	}
	if req.Model != "" && !p.Allows(req.Model) {
		r := refuse(403, typePermission, "model_not_allowed", "this credential may not call model "+echo(req.Model))
		r.Param = "model"
		return nil, r
	}
	if jsonPart != nil {
		if r := CheckJSONBody(jsonPart, g.depth); r != nil {
			return nil, r
		}
	}
	return p, nil
}

// authenticate checks the request's credential.
func (g *Gate) authenticate(h Header, now time.Time, ip netip.Addr) (*Principal, *Refusal) {
	cred := parseCredential(peek(h, "X-Api-Key"), peek(h, "Authorization"))
	nowNano := now.UnixNano()
	failed := func(r *Refusal, subject, keyID string) (*Principal, *Refusal) {
		g.abuse.authFailure(nowNano, ip, subject, keyID)
		return nil, g.fail(r)
	}
	switch cred.kind {
	case credNone:
		return failed(unauthorized("missing_credential", "this route needs a credential: an API key in X-API-Key or Authorization: Bearer, or a JWT"), "", "")
	case credBadKey:
		return failed(unauthorized("malformed_key", "the API key is not of the form aia_<id>_<secret>"), "", "")
	case credBadAuth:
		return failed(unauthorized("malformed_authorization", "Authorization must be \"Bearer \" followed by an API key or a JWT"), "", "")
	case credToken:
		if g.jwt == nil {
			r := unauthorized("invalid_api_key", "the bearer value is not an API key (aia_…), and this server accepts no JWT")
			r.Reason = "jwt_not_configured"
			return failed(r, "", "")
		}
		p, r := g.jwt.verify(cred.value)
		if r != nil {
			return failed(r, "", "")
		}
		return p, nil
	}
	id, _ := parseKey(cred.value)
	e := lookupKey(g.keys, cred.value)
	if e == nil {
		r := unauthorized("invalid_api_key", "API key aia_"+string(id)+"_… is not valid: unknown or removed")
		r.Reason = "unknown_key"
		return failed(r, "", "")
	}
	subject := "key:" + e.Name
	if !e.NotBefore.IsZero() && now.Before(e.NotBefore) {
		r := unauthorized("key_not_yet_valid", "API key aia_"+string(id)+"_… is not valid before "+e.NotBefore.UTC().Format(time.RFC3339))
		return failed(r, subject, string(id))
	}
	if !e.NotAfter.IsZero() && !now.Before(e.NotAfter) {
		r := unauthorized("key_expired", "API key aia_"+string(id)+"_… expired at "+e.NotAfter.UTC().Format(time.RFC3339)+"; ask the operator for a new key (aiassistd keygen) and use it instead")
		return failed(r, subject, string(id))
	}
	if e.allow.Len() > 0 && !e.allow.Contains(ip) {
		r := refuse(403, typePermission, "ip_not_allowed", "API key aia_"+string(id)+"_… may not be used from "+ip.String())
		r.Reason = "key_ip_not_allowed"
		return failed(r, subject, string(id))
	}
	return e.principal.get(e, id), nil
}

// kserveJSON returns the JSON part of a KServe body: all of it, or, for
// the binary extension, the header Inference-Header-Content-Length says.
func kserveJSON(ct, headerLen, body []byte) ([]byte, *Refusal) {
	mt, _, _ := bytes.Cut(ct, []byte{';'})
	if !bytes.EqualFold(bytes.TrimSpace(mt), []byte("application/octet-stream")) {
		if r := CheckContentType(ct); r != nil {
			r.Message = "Content-Type must be application/json, or application/octet-stream with Inference-Header-Content-Length (got " + echoOrNone(ct) + ")"
			return nil, r
		}
		return body, nil
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(headerLen)))
	if err != nil || n < 0 || n > len(body) {
		r := refuse(400, typeInvalidRequest, "invalid_input", "an application/octet-stream body needs Inference-Header-Content-Length, the length of its JSON header, at most the body's length")
		return nil, r
	}
	return body[:n], nil
}

func echoOrNone(b []byte) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return "none"
	}
	return echo(string(b))
}

// KeyExpiry is a key that stops working soon: its name, never the key.
type KeyExpiry struct {
	Name     string    `json:"name"`
	NotAfter time.Time `json:"not_after"`
}

// ExpiringKeys lists the keys whose not_after falls within the window
// from now (or has passed), soonest first.
func (g *Gate) ExpiringKeys(within time.Duration) []KeyExpiry {
	limit := g.now().Add(within)
	var out []KeyExpiry
	for i := range g.keys {
		k := &g.keys[i]
		if !k.NotAfter.IsZero() && !k.NotAfter.After(limit) {
			out = append(out, KeyExpiry{Name: k.Name, NotAfter: k.NotAfter})
		}
	}
	slices.SortFunc(out, func(a, b KeyExpiry) int { return a.NotAfter.Compare(b.NotAfter) })
	return out
}
