package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
	"github.com/aiassist/aiassist/daemon/listener"
	"github.com/aiassist/aiassist/daemon/secret"
	"github.com/aiassist/aiassist/schema"
)

// The config's gateway sections translated into the gate's, the limits'
// and the listeners' own options.

// buildGate makes the gate of a config generation. It carries old's abuse
// windows and blocks, so a reload lifts none, and reads the secrets key
// only when a secret in the file is encrypted.
func buildGate(cfg *schema.Config, old *gate.Gate, logger *slog.Logger, set *metrics.Set) (*gate.Gate, error) {
	opts := gate.Options{
		Open:               cfg.Auth.Open,
		Rotation:           gate.RotationOptions{WarnBefore: cfg.Auth.Rotation.WarnBefore, MaxAge: cfg.Auth.Rotation.MaxAge},
		AllowIPs:           cfg.Access.AllowIPs,
		TrustedProxies:     cfg.Access.TrustedProxies,
		MetricsRequireAuth: cfg.Metrics.RequireAuth,
		AllowedHosts:       cfg.Server.AllowedHosts,
		CORSOrigins:        cfg.Server.CORSOrigins,
		Abuse: gate.AbuseOptions{
			AuthFailures: gate.Threshold{Count: cfg.Abuse.AuthFailures.Count, Window: cfg.Abuse.AuthFailures.Window},
			Requests:     gate.Threshold{Count: cfg.Abuse.Requests.Count, Window: cfg.Abuse.Requests.Window},
			BlockFor:     cfg.Abuse.BlockFor,
			BlockStatus:  cfg.Abuse.BlockStatus,
		},
		Carry: old,
	}
	for _, name := range sortedKeys(cfg.Auth.APIKeys) {
		k := cfg.Auth.APIKeys[name]
		opts.Keys = append(opts.Keys, gate.Key{
			Name: name, Hash: k.Hash, Principal: k.Principal, Created: k.Created,
			NotBefore: k.NotBefore, NotAfter: k.NotAfter, Models: k.Models,
			AllowIPs: k.AllowIPs, Scopes: k.Scopes, Limit: k.Limit, NoCache: k.NoCache,
		})
	}
	if j := cfg.Auth.JWT; j != nil {
		jo := &gate.JWTOptions{JWKSFile: j.JWKSFile, Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway}
		for _, pk := range j.PublicKeys {
			jo.PublicKeyFiles = append(jo.PublicKeyFiles, gate.PublicKeyFile{Path: pk.File, KID: pk.KID})
		}
		if j.HS256Secret != "" {
			s, err := RevealSecret(cfg, j.HS256Secret)
			if err != nil {
				return nil, fmt.Errorf("auth.jwt.hs256_secret: %w", err)
			}
			jo.HS256Secret = s
		}
		opts.JWT = jo
	}
	return gate.New(opts, logger, set)
}

// RevealSecret returns a secret of cfg as written, or decrypted with the
// key of secrets.key_file when written enc:v1:….
func RevealSecret(cfg *schema.Config, v string) ([]byte, error) {
	if !secret.IsEncrypted(v) {
		return []byte(v), nil
	}
	key, err := secret.LoadKeyFile(cfg.Secrets.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("secrets.key_file: %w", err)
	}
	return secret.Decrypt(key, v)
}

// buildLimits makes the rate limits of a config generation from old's, so
// a bucket whose limit is unchanged keeps its state.
func buildLimits(cfg *schema.Config, old *limit.Limiter, set *metrics.Set) (*limit.Limiter, error) {
	rate := func(r *schema.Rate) limit.Rate {
		if r == nil {
			return limit.Rate{}
		}
		return limit.Rate{PerSecond: r.RequestsPerSecond, Burst: r.Burst}
	}
	opts := limit.Options{Global: rate(cfg.Limits.Global), PerIP: rate(cfg.Limits.PerIP), Classes: map[string]limit.Class{}, Metrics: set}
	for name, c := range cfg.Limits.Classes {
		opts.Classes[name] = limit.Class{
			Requests:        limit.Rate{PerSecond: c.RequestsPerSecond, Burst: c.Burst},
			TokensPerMinute: int64(c.TokensPerMinute),
			MaxConcurrent:   c.MaxConcurrent,
		}
	}
	l, err := limit.New(opts, old)
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	return l, nil
}

func listenSpecs(cfg *schema.Config) []listener.Spec {
	out := make([]listener.Spec, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		out[i] = listener.Spec{Addr: l.HostPort()}
		if t := l.TLS; t != nil {
			min := uint16(tls.VersionTLS12)
			if t.MinVersion == "1.3" {
				min = tls.VersionTLS13
			}
			out[i].TLS = &listener.TLS{CertFile: t.Cert, KeyFile: t.Key, MinVersion: min, ClientCAFile: t.ClientCA}
		}
	}
	return out
}

func listenSettings(cfg *schema.Config) listener.Settings {
	return listener.Settings{
		MaxBodyBytes:  cfg.Server.MaxBodyBytes,
		HeaderTimeout: min(cfg.Server.HeaderTimeout, cfg.Server.ReadTimeout),
		ReadTimeout:   cfg.Server.ReadTimeout,
		IdleTimeout:   cfg.Server.IdleTimeout,
		MaxConns:      cfg.Server.MaxConnections,
		MaxConnsPerIP: cfg.Server.MaxConnectionsPerIP,
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// accessFiles are the files other than models that a load reads: the
// listeners' certificates, keys and client CAs, the JWT key files, and the
// secrets key. A change of one is a reason to reload even when the config
// itself is unchanged: a renewed certificate is served after the reload
// that follows its renewal.
func accessFiles(cfg *schema.Config) []string {
	var out []string
	for _, l := range cfg.Listeners {
		if t := l.TLS; t != nil {
			out = append(out, t.Cert, t.Key)
			if t.ClientCA != "" {
				out = append(out, t.ClientCA)
			}
		}
	}
	if j := cfg.Auth.JWT; j != nil {
		for _, k := range j.PublicKeys {
			out = append(out, k.File)
		}
		if j.JWKSFile != "" {
			out = append(out, j.JWKSFile)
		}
		if secret.IsEncrypted(j.HS256Secret) {
			out = append(out, cfg.Secrets.KeyFile)
		}
	}
	return out
}

// statFiles identifies a list of files; a missing one has the zero
// identity, so its appearance is a change too.
func statFiles(paths []string) []fileID {
	out := make([]fileID, len(paths))
	for i, p := range paths {
		out[i], _ = statFile(p)
	}
	return out
}
