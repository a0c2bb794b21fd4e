package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces the import direction cmd → daemon → {engine, schema}
// across the module, tests included: engine and schema never reach up.
func TestDeps(t *testing.T) {
	const module = "github.com/aiassist/aiassist/"
	for _, tc := range []struct {
		pkgs      string
		forbidden []string
	}{
		{"./engine/...", []string{"daemon", "cmd", "schema"}},
		{"./schema/...", []string{"daemon", "engine", "cmd"}},
		{"./daemon/...", []string{"cmd"}},
	} {
		cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", tc.pkgs)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkgs, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			for _, f := range tc.forbidden {
				if pkg == module+f || strings.HasPrefix(pkg, module+f+"/") {
					t.Errorf("%s depends on %s; dependencies point cmd → daemon → {engine, schema}", tc.pkgs, pkg)
				}
			}
		}
	}
}
