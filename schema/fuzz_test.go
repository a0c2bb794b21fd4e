package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and returns either a Config that
// keeps the schema's promises (at least one model, a metrics path clear of
// the API, a position for every model's path) or an *Error whose every
// issue has a file:line:col.
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
			// Every problem is placed in the file, so an operator can
			// find it.
			for _, is := range serr.Issues {
				if is.Filename != "fuzz.cue" || is.Line < 1 || is.Column < 1 {
					t.Fatalf("issue without a position in the file: %+v", is)
				}
			}
			return
		}
		if len(cfg.Listeners) == 0 {
			t.Fatalf("Config without listeners")
		}
		if len(cfg.Models) == 0 {
			t.Fatalf("Config without models")
		}
		if p := cfg.Metrics.Path; !strings.HasPrefix(p, "/") || p == "/v1" || p == "/v2" ||
			strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") || strings.Contains(p, "//") {
			t.Fatalf("metrics.path %q hides an API route or is not clean", p)
		}
		if cfg.Server.RequestTimeout <= 0 {
			t.Fatalf("RequestTimeout %v", cfg.Server.RequestTimeout)
		}
		for name, m := range cfg.Models {
			if m.Name != name || !filepath.IsAbs(m.Path) || m.Instances < 1 {
				t.Fatalf("bad model %q: %+v", name, m)
			}
			// path is required, so the file sets it somewhere.
			if pos := cfg.Pos(m.FieldPath("path")); !strings.HasPrefix(pos, "fuzz.cue:") {
				t.Fatalf("model %q: Pos of its path = %q", name, pos)
			}
			if is := cfg.Issue(m.FieldPath("path"), "x"); is.Filename != "fuzz.cue" || is.Line < 1 || is.Column < 1 {
				t.Fatalf("model %q: Issue at its path = %+v", name, is)
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
