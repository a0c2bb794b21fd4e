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
	// lib are the daemon's library packages: each has one job and its own
	// options, so none reads the config or reaches the daemon or the API.
	lib := []string{"daemon", "daemon/api", "daemon/listener", "schema", "engine"}
	for _, tc := range []struct {
		pkgs string
		// forbidden are packages and everything under them; exact are
		// packages alone.
		forbidden, exact []string
	}{
		{"./engine/...", []string{"daemon", "cmd", "schema"}, nil},
		{"./schema/...", []string{"daemon", "engine", "cmd"}, nil},
		{"./daemon/...", []string{"cmd"}, nil},
		{"./daemon/api/...", []string{"cmd", "schema", "daemon/listener"}, []string{"daemon"}},
		{"./daemon/gate/...", []string{"cmd", "schema", "engine", "daemon/api", "daemon/listener", "daemon/limit", "daemon/alert"}, []string{"daemon"}},
		{"./daemon/limit/...", lib[1:], []string{"daemon"}},
		{"./daemon/secret/...", []string{"cmd", "schema", "engine", "daemon/api", "daemon/listener", "daemon/gate", "daemon/limit", "daemon/alert", "daemon/observe"}, []string{"daemon"}},
		{"./daemon/alert/...", lib[1:], []string{"daemon"}},
		{"./daemon/cache/...", lib[1:], []string{"daemon"}},
		{"./daemon/listener/...", []string{"cmd", "schema", "engine", "daemon/api", "daemon/gate", "daemon/limit", "daemon/alert"}, []string{"daemon"}},
		{"./daemon/scale/...", lib[1:], []string{"daemon"}},
		{"./packaging/...", []string{"cmd", "daemon"}, nil},
		{"./daemon/observe/...", []string{"cmd", "schema", "daemon/api", "daemon/listener", "daemon/gate"}, []string{"daemon"}},
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
					t.Errorf("%s depends on %s; dependencies point cmd → daemon → {engine, schema}, and the daemon's libraries take their own options", tc.pkgs, pkg)
				}
			}
			for _, f := range tc.exact {
				if pkg == module+f {
					t.Errorf("%s depends on %s, which runs it", tc.pkgs, pkg)
				}
			}
		}
	}
}
