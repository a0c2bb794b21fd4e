package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and returns either a Config that
// keeps the schema's promises or an *Error whose every line is well formed.
// Seeds are in testdata/fuzz/FuzzParse, and every testdata/*.cue is added.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.cue")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.cue", src)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned both a Config and an error: %v", err)
			}
			var serr *Error
			if !errors.As(err, &serr) {
				// Only a recovered panic gives another error; that is a
				// bug in CUE or here, worth a failing case.
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			if len(serr.Issues) == 0 || strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("empty *Error")
			}
			return
		}
		if len(cfg.Listeners) == 0 {
			t.Fatalf("Config without listeners")
		}
		if cfg.Server.RequestTimeout <= 0 {
			t.Fatalf("RequestTimeout %v", cfg.Server.RequestTimeout)
		}
		for name, m := range cfg.Models {
			if m.Name != name || !filepath.IsAbs(m.Path) || m.Instances < 1 {
				t.Fatalf("bad model %q: %+v", name, m)
			}
			switch m.Kind {
			case KindTensor:
				if m.MaxSequences != 0 || m.Truncate != "" {
					t.Fatalf("tensor model %q with causal-lm fields: %+v", name, m)
				}
			case KindCausalLM:
				if m.MaxSequences < 1 || (m.Truncate != "error" && m.Truncate != "left") || m.Batching != (Batching{}) {
					t.Fatalf("bad causal-lm model %q: %+v", name, m)
				}
			default:
				t.Fatalf("model %q of kind %q", name, m.Kind)
			}
			if m.Batching.MaxQueueDelay < 0 || m.Batching.MaxQueueDelay > maxQueueDelay {
				t.Fatalf("model %q: MaxQueueDelay %v", name, m.Batching.MaxQueueDelay)
			}
		}
		if cfg.DefaultModel != "" {
			if m, ok := cfg.Models[cfg.DefaultModel]; !ok || m.Kind != KindCausalLM {
				t.Fatalf("DefaultModel %q is not a causal-lm model", cfg.DefaultModel)
			}
		}
	})
}
