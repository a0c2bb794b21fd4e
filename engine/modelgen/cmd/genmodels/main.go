// Command genmodels writes the example ONNX models to a directory, as
// DIR/<name>/model.onnx plus, for tiny-llama, its config and tokenizer files.
//
//	go run ./engine/modelgen/cmd/genmodels -out examples/models -which demo,types,llama,bert
//	go run ./engine/modelgen/cmd/genmodels -out /tmp/models -which big
//
// -which takes a comma-separated list of demo, types, llama, bert, big or all.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// aliases maps the short names -which accepts to preset names.
var aliases = map[string]string{"demo": "demo-mlp", "big": "big-mlp", "llama": "tiny-llama", "bert": "tiny-bert"}

func main() {
	out := flag.String("out", "examples/models", "directory to write DIR/<model>/model.onnx into")
	which := flag.String("which", "demo,types,llama,bert", "comma-separated models to write: demo, types, llama, bert, big or all")
	flag.Parse()
	if err := run(*out, *which); err != nil {
		fmt.Fprintln(os.Stderr, "genmodels:", err)
		os.Exit(1)
	}
}

func run(out, which string) error {
	want := map[string]bool{}
	for w := range strings.SplitSeq(which, ",") {
		w = strings.TrimSpace(w)
		if a, ok := aliases[w]; ok {
			w = a
		}
		want[w] = true
	}
	var known []string
	var picked []modelgen.Preset
	for _, p := range modelgen.Presets() {
		known = append(known, p.Name)
		if want[p.Name] || want["all"] {
			picked = append(picked, p)
		}
		delete(want, p.Name)
	}
	delete(want, "all")
	// Reject typos before writing anything, so a bad flag never leaves a
	// partly regenerated directory behind.
	for w := range want {
		return fmt.Errorf("unknown model %q in -which; use demo, types, llama, bert, big, all or one of %s", w, strings.Join(known, ", "))
	}
	for _, p := range picked {
		paths, err := p.Write(out)
		for _, path := range paths {
			fmt.Println("wrote", path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
