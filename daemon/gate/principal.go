package gate

import (
	"log/slog"
	"slices"
	"sync/atomic"
)

// Principal kinds.
const (
	KindAnonymous = "anonymous" // no credential configured, or a route that needs none
	KindKey       = "key"
	KindJWT       = "jwt"
)

// Principal is who a request acts for. It holds no secret: logging it
// whole is safe. Principals of API keys are shared between requests and
// must not be changed.
type Principal struct {
	Kind string
	// Name identifies the principal for logs and per-principal limits:
	// the key's principal, or the token's subject.
	Name string
	// KeyName is the config name of the API key; KeyID its id part.
	KeyName, KeyID string
	// Subject and Issuer come from a JWT.
	Subject, Issuer string
	// Limit is the key's rate-limit class.
	Limit  string
	Scopes []string
	// NoCache says the key has cache: false: its requests are neither
	// answered from the response cache nor stored in it.
	NoCache bool

	subject     string              // what abuse detection tracks it under
	keyModels   map[string]struct{} // nil: all
	jwtModels   []string
	jwtNarrowed bool // the token has a models claim
}

var anonymous = &Principal{Kind: KindAnonymous, Name: KindAnonymous}

// HasScope tells whether the principal was granted scope. Anonymous
// principals have every scope: nothing was configured to restrict them.
func (p *Principal) HasScope(scope string) bool {
	if p.Kind == KindAnonymous {
		return true
	}
	return slices.Contains(p.Scopes, scope)
}

// Allows tells whether the principal may call model: it must be among
// the key's models (when it lists any) and the token's models claim (when
// it has one).
func (p *Principal) Allows(model string) bool {
	if p.keyModels != nil {
		if _, ok := p.keyModels[model]; !ok {
			return false
		}
	}
	if p.jwtNarrowed && !slices.Contains(p.jwtModels, model) {
		return false
	}
	return true
}

// LogValue names the principal without anything secret.
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.Value{}
	}
	attrs := []slog.Attr{slog.String("kind", p.Kind), slog.String("name", p.Name)}
	if p.KeyName != "" {
		attrs = append(attrs, slog.String("key", p.KeyName), slog.String("key_id", p.KeyID))
	}
	if p.Issuer != "" {
		attrs = append(attrs, slog.String("issuer", p.Issuer))
	}
	return slog.GroupValue(attrs...)
}

// principalCell holds the shared Principal of one key, made on the first
// request that presents it: only then is the key's id known.
type principalCell struct {
	p atomic.Pointer[Principal]
}

func (c *principalCell) get(e *keyEntry, id []byte) *Principal {
	if p := c.p.Load(); p != nil {
		return p
	}
	p := &Principal{
		Kind:      KindKey,
		Name:      e.Principal,
		KeyName:   e.Name,
		KeyID:     string(id),
		Limit:     e.Limit,
		NoCache:   e.NoCache,
		Scopes:    e.scopes,
		subject:   "key:" + e.Name,
		keyModels: e.models,
	}
	c.p.CompareAndSwap(nil, p)
	return c.p.Load()
}
