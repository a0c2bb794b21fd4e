package schema

import (
	"strings"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	const model = "models: m: {kind: \"causal-lm\", path: \"m\"}\n"
	parse := func(src string) (*Config, error) { return Parse("c.cue", []byte(model+src)) }
	cfg, err := parse("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cache != nil || cfg.Models["m"].NoCache {
		t.Errorf("defaults: cache %+v, model NoCache %v; want no cache, the model cacheable", cfg.Cache, cfg.Models["m"].NoCache)
	}
	cfg, err = parse("cache: enabled: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Cache{MaxEntries: 10000, MaxBytes: 64 << 20, TTL: 10 * time.Minute}); cfg.Cache == nil || *cfg.Cache != want {
		t.Errorf("enabled defaults: %+v, want %+v", cfg.Cache, want)
	}
	cfg, err = parse(`cache: {enabled: true, max_entries: 5, max_bytes: 8192, ttl: "0", sampled: true}
models: m: cache: false
auth: api_keys: {
	a: {hash: "sha256:` + strings.Repeat("a", 64) + `", cache: false}
	b: {hash: "sha256:` + strings.Repeat("b", 64) + `"}
}
`)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Cache{MaxEntries: 5, MaxBytes: 8192, Sampled: true}); *cfg.Cache != want {
		t.Errorf("cache %+v, want %+v", *cfg.Cache, want)
	}
	if !cfg.Models["m"].NoCache || !cfg.Auth.APIKeys["a"].NoCache || cfg.Auth.APIKeys["b"].NoCache {
		t.Errorf("model NoCache %v, key a %v, key b %v; want true, true, false", cfg.Models["m"].NoCache, cfg.Auth.APIKeys["a"].NoCache, cfg.Auth.APIKeys["b"].NoCache)
	}
	for src, want := range map[string]string{
		`cache: {enabled: true, ttl: "31d"}`:     `c.cue:2:29: cache.ttl: invalid duration "31d": must be at most "30d"`,
		`cache: {enabled: false, ttl: "40d"}`:    `cache.ttl: invalid duration "40d"`,
		`cache: {enabled: true, max_bytes: 10}`:  "cache.max_bytes",
		`cache: {enabled: true, max_entries: 0}`: "cache.max_entries",
		`cache: {size: 3}`:                       "cache.size",
		`models: m: cache: "no"`:                 "models.m.cache",
	} {
		_, err := parse(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", src, err, want)
		}
	}
}
