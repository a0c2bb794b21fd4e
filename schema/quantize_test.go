package schema

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestQuantization(t *testing.T) {
	f := func(src, wantErr string, check func(*Config)) {
		t.Helper()
		cfg, err := Parse("/etc/aiassist/q.cue", []byte(src))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", src, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s:\n got %v\nwant ...%s...", src, err, wantErr)
		case err == nil && check != nil:
			check(cfg)
		}
	}
	tensor := `models: a: {kind: "tensor", path: "x.onnx"`
	lm := `models: b: {kind: "causal-lm", path: "m"`
	f(tensor+"}", "", func(c *Config) {
		if c.Models["a"].Quantization != QuantizationNone || c.Runtime.CacheDir != "/var/lib/aiassist/cache" {
			t.Errorf("defaults: quantization %q, cache_dir %q", c.Models["a"].Quantization, c.Runtime.CacheDir)
		}
	})
	f(tensor+`, quantization: "int8"}`+"\n"+lm+`, quantization: "int8"}`+"\nruntime: cache_dir: \"cache\"", "", func(c *Config) {
		if c.Models["a"].Quantization != QuantizationInt8 || c.Models["b"].Quantization != QuantizationInt8 {
			t.Errorf("quantization: %q, %q", c.Models["a"].Quantization, c.Models["b"].Quantization)
		}
		if want := filepath.Join("/etc/aiassist", "cache"); c.Runtime.CacheDir != want {
			t.Errorf("cache_dir %q, want %q resolved against the config's folder", c.Runtime.CacheDir, want)
		}
	})
	f(tensor+`, quantization: "int4"}`, `q.cue:1:59: models.a.quantization: invalid value "int4" (must be one of "int8", "none")`, nil)
	f(tensor+"}\nruntime: cache_dir: \"\"", `runtime.cache_dir: invalid value ""`, nil)
}
