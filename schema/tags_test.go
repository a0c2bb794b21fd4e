package schema

import (
	"os"
	"strings"
	"testing"
)

// TestTags sets fields from the environment through @tag(NAME) and checks
// that the schema still judges the result.
func TestTags(t *testing.T) {
	const src = `_port: *8080 | int @tag(AIA_TEST_PORT,type=int)
_path: *"/srv/demo.onnx" | string @tag(AIA_TEST_PATH)
listeners: [{port: _port}]
logging: access_log: *true | bool @tag(AIA_TEST_ACCESS,type=bool)
models: m: {kind: "tensor", path: _path, batching: max_queue_delay: *"2ms" | string @tag(AIA_TEST_DELAY)}
alerts: error_rate: above: *0.05 | number @tag(AIA_TEST_RATE,type=number)
`
	names := []string{"AIA_TEST_PORT", "AIA_TEST_PATH", "AIA_TEST_ACCESS", "AIA_TEST_DELAY", "AIA_TEST_RATE"}
	setEnv := func(t *testing.T, env map[string]string) {
		for _, k := range names {
			t.Setenv(k, "")
			if v, ok := env[k]; ok {
				os.Setenv(k, v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
	good := func(env map[string]string, check func(*Config) string) {
		t.Helper()
		setEnv(t, env)
		cfg, err := Parse("tags.cue", []byte(src))
		if err != nil {
			t.Fatalf("env %v: %v", env, err)
		}
		if msg := check(cfg); msg != "" {
			t.Errorf("env %v: %s", env, msg)
		}
	}
	good(nil, func(c *Config) string {
		if c.Listeners[0].Port != 8080 || c.Models["m"].Path != "/srv/demo.onnx" || !c.Logging.AccessLog {
			return "the defaults did not apply"
		}
		return ""
	})
	good(map[string]string{"AIA_TEST_PORT": " 9090 ", "AIA_TEST_PATH": "/models/x.onnx", "AIA_TEST_ACCESS": "false", "AIA_TEST_RATE": "0.25"}, func(c *Config) string {
		if c.Listeners[0].Port != 9090 || c.Models["m"].Path != "/models/x.onnx" || c.Logging.AccessLog || c.Alerts.ErrorRate.Above != 0.25 {
			return "the tags did not apply"
		}
		return ""
	})

	bad := func(env map[string]string, src string, want ...string) {
		t.Helper()
		setEnv(t, env)
		_, err := Parse("tags.cue", []byte(src))
		if err == nil {
			t.Fatalf("env %v: no error", env)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("env %v: error %q, want it to contain %q", env, err, w)
			}
		}
		// A value the schema refuses is quoted as it would be in the
		// file; one that is not even of the tag's type is not.
		for _, v := range env {
			if strings.Contains(err.Error(), "is not a valid") && strings.Contains(err.Error(), v) {
				t.Errorf("env %v: the error quotes the value %q (it may be a secret): %q", env, v, err)
			}
		}
	}
	// Not an int: said at the attribute, without the value.
	bad(map[string]string{"AIA_TEST_PORT": "eighty"}, src, "tags.cue:1:20: @tag(AIA_TEST_PORT,type=int): $AIA_TEST_PORT (6 bytes) is not a valid int")
	bad(map[string]string{"AIA_TEST_ACCESS": "maybe"}, src, "tags.cue:4:", "is not a valid bool")
	bad(map[string]string{"AIA_TEST_RATE": "NaN"}, src, "tags.cue:6:", "is not a valid number")
	// An int, but not a port: the schema's bound.
	bad(map[string]string{"AIA_TEST_PORT": "70000"}, src, "listeners.0.port", "70000")
	// A string the schema refuses.
	bad(map[string]string{"AIA_TEST_DELAY": "soon-ish"}, src, "max_queue_delay")
	// Mistakes in the attribute itself are errors whether or not the
	// variable is set.
	bad(nil, `x: *1 | int @tag(1X)`+"\n"+src, "tags.cue:1:13:", "not an environment variable name")
	bad(nil, `x: *1 | int @tag(X,short=y)`+"\n"+src, "unknown tag option \"short\"")
	bad(nil, `x: *1 | int @tag(X,type=float)`+"\n"+src, "unknown tag type \"float\"")
}

// FuzzTag checks that any attribute body and variable value give a
// literal of the asked type or an error, never a panic, and that an error
// never holds the value.
// Seeds are in testdata/fuzz/FuzzTag.
func FuzzTag(f *testing.F) {
	f.Add("AIA_FUZZ,type=int", "8080")
	f.Add("AIA_FUZZ", "/models/x")
	f.Fuzz(func(t *testing.T, body, value string) {
		if strings.ContainsRune(value, 0) {
			return // the environment cannot hold a NUL
		}
		t.Setenv("AIA_FUZZ", value)
		lit, err := tagValue(body)
		if err != nil {
			if len(value) > 8 && strings.Contains(err.Error(), value) {
				t.Fatalf("the error %q quotes the value", err)
			}
			return
		}
		if lit == nil && strings.HasPrefix(strings.TrimSpace(body), "AIA_FUZZ") && strings.TrimSpace(strings.Split(body, ",")[0]) == "AIA_FUZZ" {
			t.Fatalf("%q: the variable is set but nothing was injected", body)
		}
	})
}
