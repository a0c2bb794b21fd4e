package schema

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps schema a leaf: it may import the standard library and CUE,
// but no other package of this module (cmd → daemon → {engine, schema}).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		// The go tool runs these tests, so it is there; a failure is
		// worth seeing rather than skipping.
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/aiassist/aiassist/"
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, module) && pkg != module+"schema" && !strings.HasPrefix(pkg, module+"schema/") {
			t.Errorf("schema imports %s; schema must not depend on other packages of the module", pkg)
		}
	}
}
