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

// SharedPath is rel inside the shared folder; see Need for a missing one.
func SharedPath(t testing.TB, rel string) string {
	t.Helper()
	return Need(t, filepath.Join(Shared(t), rel))
}

// Need returns path if it exists. A missing one skips the test, except
// with CI=true: CI always has the shared folder, so there a missing file
// is a broken checkout and fails the test instead of hiding it.
func Need(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		const hint = "(is the shared folder beside the repository, or AIASSIST_SHARED set?)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing %s; with CI=true the test cannot skip: %v", path, hint, err)
		}
		t.Skipf("%s is missing %s: %v", path, hint, err)
	}
	return path
}
