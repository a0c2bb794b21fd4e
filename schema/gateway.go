package schema

// The checks of the gateway's settings: credentials, addresses, hosts,
// origins and limits.

import (
	"encoding/base64"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// encPrefix leads a secret written encrypted (AES-256-GCM with the key of
// secrets.key_file), the rest being its standard, padded base64.
const encPrefix = "enc:v1:"

// minHS256Secret is the shortest plain HS256 secret accepted: as many bytes
// as the hash's output, RFC 7518 section 3.2.
const minHS256Secret = 32

// loopback reports whether a listener's address takes connections from
// this machine alone.
func loopback(address string) bool {
	if address == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(address)
	return err == nil && a.Unmap().IsLoopback()
}

// hasCredentials reports whether the config sets any way to authenticate.
func hasCredentials(cfg *Config) bool {
	return len(cfg.Auth.APIKeys) > 0 || cfg.Auth.JWT != nil
}

// checkExposure keeps the gateway secure by default: without credentials
// only loopback listeners serve inference, unless the file says open on
// purpose. It also warns of exposed listeners without a global rate limit
// or without TLS.
func (c *checker) checkExposure(cfg *Config) {
	creds, open := hasCredentials(cfg), cfg.Auth.Open
	if open && creds {
		c.errorf([]string{"auth", "open"}, "open: true contradicts the credentials configured: with any API key or jwt every inference route needs a credential; remove open: true, or remove auth.api_keys and auth.jwt to serve without credentials")
	}
	if open && !creds {
		c.warnf([]string{"auth", "open"}, "open: true serves inference without a credential on every listener; remove it once clients have API keys (aiassistd keygen)")
	}
	if cfg.Metrics.RequireAuth && !creds {
		c.errorf([]string{"metrics", "require_auth"}, "require_auth: true needs a credential to accept, and none is configured: add an API key (aiassistd keygen) or auth.jwt, or remove require_auth")
	}
	for i, l := range cfg.Listeners {
		if loopback(l.Address) {
			continue
		}
		at := []string{"listeners", strconv.Itoa(i), "address"}
		if !creds && !open {
			c.errorf(at, "listener %q is not loopback, and no credential is configured, so anyone who reaches it could call every model: add an API key (aiassistd keygen -name NAME prints one and the lines to append to this file), or auth.jwt; or set auth: open: true to serve without credentials on purpose; or listen on 127.0.0.1", l.HostPort())
			continue
		}
		if cfg.Limits.Global == nil {
			c.warnf(at, "listener %q is not loopback and limits.global is unset, so nothing bounds the requests it takes: add limits: global: {requests_per_second: 100, burst: 200}, or a rate of your own", l.HostPort())
		}
		if creds && l.TLS == nil {
			c.warnf(at, "listener %q is not loopback and serves plain HTTP, so API keys and tokens cross the network readable: add tls: {cert: ..., key: ...} to it, or put it behind a proxy that terminates TLS and listen on loopback", l.HostPort())
		}
	}
}

// checkAPIKeys checks what each API key names: models, a limit class,
// networks, its validity period, and that no two keys share a hash.
func (c *checker) checkAPIKeys(cfg *Config) {
	hashes := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Auth.APIKeys)) {
		k := cfg.Auth.APIKeys[name]
		at := func(elem ...string) []string {
			return append([]string{"auth", "api_keys", label(name)}, elem...)
		}
		if first, ok := hashes[k.Hash]; ok {
			c.errorf(at("hash"), "auth.api_keys.%s has the same hash: each key must be its own; make another with aiassistd keygen", label(first))
		} else {
			hashes[k.Hash] = name
		}
		for i, m := range k.Models {
			if _, ok := cfg.Models[m]; !ok {
				c.errorf(at("models", strconv.Itoa(i)), "model %q is not configured; add it under models, or name one of: %s", m, strings.Join(cfg.ModelNames(), ", "))
			}
		}
		if k.Limit != "" {
			if _, ok := cfg.Limits.Classes[k.Limit]; !ok {
				fix := "add it under limits.classes, or remove limit"
				if len(cfg.Limits.Classes) > 0 {
					fix = "add it under limits.classes, or name one of: " + strings.Join(slices.Sorted(maps.Keys(cfg.Limits.Classes)), ", ")
				}
				c.errorf(at("limit"), "limit class %q is not configured; %s", k.Limit, fix)
			}
		}
		if !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && !k.NotAfter.After(k.NotBefore) {
			c.errorf(at("not_after"), "not_after must be after not_before (%s), or the key never works; move one of them", k.NotBefore.Format("2006-01-02T15:04:05Z07:00"))
		}
		c.checkNets(at("allow_ips"), k.AllowIPs)
	}
}

// checkJWT checks that jwt can verify a token and that its secret is
// strong enough or well-formed. The secret itself is never put in a
// message.
func (c *checker) checkJWT(j *JWT) {
	if j == nil {
		return
	}
	if j.HS256Secret == "" && len(j.PublicKeys) == 0 && j.JWKSFile == "" {
		c.errorf([]string{"auth", "jwt"}, "jwt has no key to verify tokens with: set hs256_secret, public_keys or jwks_file, or remove jwt")
	}
	at := []string{"auth", "jwt", "hs256_secret"}
	switch s := j.HS256Secret; {
	case s == "":
	case strings.HasPrefix(s, encPrefix):
		b, err := base64.StdEncoding.DecodeString(s[len(encPrefix):])
		if err != nil || len(b) == 0 {
			c.errorf(at, "the value after %q is not base64: write the whole value that aiassistd encrypt prints", encPrefix)
		}
	case len(s) < minHS256Secret:
		c.errorf(at, "a plain secret is shorter than %d bytes, too short for HS256: make one with `openssl rand -base64 48`, and write it encrypted as aiassistd encrypt prints it (%s...)", minHS256Secret, encPrefix)
	default:
		c.warnf(at, "the secret is written in plain text, so whoever reads this file can make tokens: write it encrypted, as aiassistd encrypt prints it (%s...)", encPrefix)
	}
	kids := map[string]int{}
	for i, k := range j.PublicKeys {
		if k.KID == "" {
			continue
		}
		if first, ok := kids[k.KID]; ok {
			c.errorf([]string{"auth", "jwt", "public_keys", strconv.Itoa(i), "kid"}, "kid %q is public_keys.%d's as well, so a token naming it could not pick its key; give each key its own kid", k.KID, first)
			continue
		}
		kids[k.KID] = i
	}
}

// checkNets checks that every entry of an allow list at path is an IP
// address or a CIDR network in its canonical form.
func (c *checker) checkNets(path []string, entries []string) {
	for i, e := range entries {
		at := append(slices.Clip(path), strconv.Itoa(i))
		const fix = `write an address ("10.1.2.3", "fd00::1") or a CIDR network ("10.0.0.0/8", "fd00::/8")`
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			switch {
			case err != nil:
				c.errorf(at, "%q is not a network: %s", e, fix)
			case p != p.Masked():
				c.errorf(at, "%q has address bits set past its /%d prefix; write the network as %q", e, p.Bits(), p.Masked().String())
			}
			continue
		}
		a, err := netip.ParseAddr(e)
		switch {
		case err != nil:
			c.errorf(at, "%q is not an address or network: %s", e, fix)
		case a.Zone() != "":
			c.errorf(at, "%q has a zone, which client addresses are not compared by; write it as %q", e, a.WithZone("").String())
		}
	}
}

// hostName is a DNS name as a Host header carries it: labels of letters,
// digits, '-' and '_' (some private names have them), split by dots.
var hostName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$`)

// checkHosts checks that server.allowed_hosts are host names or IP
// addresses without a port, as they are compared with the host of a
// request's Host header.
func (c *checker) checkHosts(hosts []string) {
	for i, h := range hosts {
		at := []string{"server", "allowed_hosts", strconv.Itoa(i)}
		if _, err := netip.ParseAddr(h); err == nil {
			continue
		}
		if host, _, err := net.SplitHostPort(h); err == nil && !strings.Contains(h, "/") {
			c.errorf(at, "%q has a port: write the host alone, as %q (a Host is accepted on every port)", h, host)
			continue
		}
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			c.errorf(at, "%q is in brackets: write the IPv6 address alone, as %q", h, strings.Trim(h, "[]"))
			continue
		}
		if !hostName.MatchString(h) || len(h) > 253 {
			c.errorf(at, "%q is not a host name or IP address: write one alone, such as \"ai.example.com\" or \"10.1.2.3\" (no scheme, port or path)", h)
		}
	}
}

// checkOrigins checks that server.cors_origins are origins as a browser
// sends them in its Origin header, since they are compared as text.
func (c *checker) checkOrigins(origins []string) {
	for i, o := range origins {
		if o == "*" {
			continue
		}
		at := []string{"server", "cors_origins", strconv.Itoa(i)}
		u, err := url.Parse(o)
		const fix = `write an origin as a browser sends it: scheme, host and any port, such as "https://app.example.com" or "http://localhost:3000"`
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || !validPort(u):
			c.errorf(at, "%q is not an origin: %s", o, fix)
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || (u.Path != "" && u.Path != "/"):
			c.errorf(at, "%q is more than an origin: %s", o, fix)
		case u.Path == "/":
			c.errorf(at, "%q ends in \"/\", which a browser's Origin never has; write it as %q", o, strings.TrimSuffix(o, "/"))
		case o != strings.ToLower(o):
			c.errorf(at, "%q has capitals, which a browser's Origin never has; write it as %q", o, strings.ToLower(o))
		}
	}
}

// validPort reports whether the URL u has no port or a valid one.
func validPort(u *url.URL) bool {
	if strings.HasSuffix(u.Host, ":") {
		return false
	}
	p := u.Port()
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// checkLimits checks what CUE cannot of the rate limits: a class's burst
// needs its rate, and warns of a burst too small to reach its rate.
func (c *checker) checkLimits(l Limits) {
	small := func(at []string, r Rate) {
		if r.Burst > 0 && float64(r.Burst) < r.RequestsPerSecond {
			c.warnf(at, "burst %d is below requests_per_second %v, so requests that arrive together are refused before the rate is reached; leave burst out (one second's worth) or raise it", r.Burst, r.RequestsPerSecond)
		}
	}
	if l.Global != nil {
		small([]string{"limits", "global", "burst"}, *l.Global)
	}
	if l.PerIP != nil {
		small([]string{"limits", "per_ip", "burst"}, *l.PerIP)
	}
	for _, name := range slices.Sorted(maps.Keys(l.Classes)) {
		cl := l.Classes[name]
		at := []string{"limits", "classes", label(name), "burst"}
		if cl.RequestsPerSecond == 0 && cl.Burst > 0 {
			c.errorf(at, "burst needs requests_per_second, the rate its bucket refills at: add requests_per_second to the class, or remove burst")
			continue
		}
		small(at, Rate{RequestsPerSecond: cl.RequestsPerSecond, Burst: cl.Burst})
	}
}

// checkAbuse warns of a block that nothing can trigger.
func (c *checker) checkAbuse(a Abuse) {
	if a.BlockFor > 0 && a.AuthFailures.Count == 0 && a.Requests.Count == 0 {
		c.warnf([]string{"abuse", "block_for"}, "block_for has no effect: auth_failures.count and requests.count are both 0, so nothing is found abusing; set a count, or remove block_for")
	}
}
