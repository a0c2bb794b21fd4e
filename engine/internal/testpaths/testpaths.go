// Package testpaths finds, for tests, the repository root and the shared
// folder of small real models that lies beside the repository (or is named
// by $AIASSIST_SHARED), wherever the repository is cloned.
package testpaths

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot is the folder holding go.mod, found from the test's directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Shared is the shared folder: $AIASSIST_SHARED, else "shared" beside the
// repository root.
func Shared(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("AIASSIST_SHARED"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(t), "..", "shared")
}
