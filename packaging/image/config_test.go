package image

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/schema"
)

// TestDefaultConfig loads the image's config.cue as the daemon in the
// container would, with and without the environment variables it reads
// through @tag.
func TestDefaultConfig(t *testing.T) {
	src, err := os.ReadFile("config.cue")
	if err != nil {
		t.Fatal(err)
	}
	f := func(env map[string]string, wantModels []string, wantDefault string, wantPort int) {
		t.Helper()
		for _, k := range []string{"MODEL_PATH", "MODEL_NAME", "PORT"} {
			v, ok := env[k]
			if ok {
				t.Setenv(k, v)
			} else {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
		}
		cfg, err := schema.Parse(ConfigPath, src)
		if err != nil {
			t.Fatalf("env %v: %v", env, err)
		}
		var models []string
		for name, m := range cfg.Models {
			models = append(models, name+"="+m.Kind+":"+m.Path)
		}
		sort.Strings(models)
		if strings.Join(models, " ") != strings.Join(wantModels, " ") {
			t.Errorf("env %v: models %q, want %q", env, models, wantModels)
		}
		if cfg.DefaultModel != wantDefault {
			t.Errorf("env %v: default_model %q, want %q", env, cfg.DefaultModel, wantDefault)
		}
		if len(cfg.Listeners) != 1 || cfg.Listeners[0].Address != "0.0.0.0" || cfg.Listeners[0].Port != wantPort {
			t.Errorf("env %v: listeners %+v, want 0.0.0.0:%d", env, cfg.Listeners, wantPort)
		}
		if !cfg.Auth.Open {
			t.Errorf("env %v: auth.open is false; a non-loopback listener without credentials is refused", env)
		}
	}
	demo := []string{
		"demo-mlp=tensor:" + ModelsDir + "/demo-mlp/model.onnx",
		"tiny-llama=causal-lm:" + ModelsDir + "/tiny-llama",
	}
	f(nil, demo, "tiny-llama", Port)
	f(map[string]string{"MODEL_PATH": ""}, demo, "tiny-llama", Port)
	f(map[string]string{"MODEL_PATH": "/models/llama-7b"}, []string{"llama-7b=causal-lm:/models/llama-7b"}, "llama-7b", Port)
	f(map[string]string{"MODEL_PATH": "/models/llama-7b/"}, []string{"llama-7b=causal-lm:/models/llama-7b"}, "llama-7b", Port)
	f(map[string]string{"MODEL_PATH": "/models/x", "MODEL_NAME": "chat", "PORT": "18080"}, []string{"chat=causal-lm:/models/x"}, "chat", 18080)

	bad := func(env map[string]string, want string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		_, err := schema.Parse(ConfigPath, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("env %v: error %v, want one containing %q", env, err, want)
		}
	}
	bad(map[string]string{"PORT": "http"}, ConfigPath+":20:")
	bad(map[string]string{"PORT": "70000"}, "listeners")
	bad(map[string]string{"MODEL_PATH": "/models/x", "MODEL_NAME": "no spaces"}, "models")
}
