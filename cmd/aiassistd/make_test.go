package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestMakeTargets dry-runs every target of the Makefile and checks that
// each script or binary its recipes run from the tree exists, so that no
// target points at a file that was moved or never written.
func TestMakeTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is missing")
	}
	root := filepath.Join("..", "..")
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no .PHONY line")
	}
	targets := strings.Fields(string(m[1]))
	// A path run from the tree: ./anything, or a script by relative path.
	local := regexp.MustCompile(`(?:^|[\s@])(\./[\w./-]+|[\w-]+/[\w./-]+\.sh)\b`)
	for _, target := range targets {
		cmd := exec.Command("make", "-n", target)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("make -n %s: %v\n%s", target, err, out)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, sm := range local.FindAllStringSubmatch(line, -1) {
				p := sm[1]
				if strings.HasPrefix(p, "./bin/") || strings.HasPrefix(p, "./...") || strings.HasPrefix(p, "./cmd/") || strings.HasPrefix(p, "./engine/") {
					continue // built by the recipe itself, or a Go package pattern
				}
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("make %s runs %s, which does not exist", target, p)
				}
			}
		}
	}
}

// TestMakeModels regenerates the example models with the Makefile's own
// recipe into a temporary folder and checks that it writes every committed
// model, byte for byte.
func TestMakeModels(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("make", "-s", "models", "MODELS_OUT="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make models: %v\n%s", err, b)
	}
	committed := filepath.Join(root, "examples", "models")
	// The benchmark models are generated into examples/models too, and
	// git-ignored there (make bench, make bench-generate): not committed.
	ignored := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(committed, ".gitignore")); err == nil {
		for line := range strings.Lines(string(b)) {
			if dir, ok := strings.CutSuffix(strings.TrimSpace(line), "/"); ok {
				ignored[dir] = true
			}
		}
	}
	var want, got []string
	walk := func(base string, into *[]string) {
		filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && base == committed && ignored[d.Name()] {
				return filepath.SkipDir
			}
			if err == nil && !d.IsDir() && filepath.Ext(p) != ".md" && d.Name() != ".gitignore" {
				rel, _ := filepath.Rel(base, p)
				*into = append(*into, rel)
			}
			return err
		})
	}
	walk(committed, &want)
	walk(out, &got)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatalf("make models writes %v; examples/models has %v", got, want)
	}
	for _, rel := range want {
		a, _ := os.ReadFile(filepath.Join(committed, rel))
		b, _ := os.ReadFile(filepath.Join(out, rel))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from what make models writes", rel)
		}
	}
}
