package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostPath adds a file reached through a relative and an absolute
// symlink, as /lib -> usr/lib and /usr/lib64/ld-linux-x86-64.so.2 are on
// Debian, and gets the symlinks and the file at their host paths.
func TestHostPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/libx.so.1.2"), []byte("elf"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"lib":               "usr/lib",
		"usr/lib/libx.so.1": "libx.so.1.2",
		"abs":               filepath.Join(dir, "lib/libx.so.1"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	tr := NewTree()
	real, err := tr.HostPath(filepath.Join(dir, "abs"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "usr/lib/libx.so.1.2"); real != want {
		t.Errorf("HostPath ends at %s, want %s", real, want)
	}
	for p, want := range map[string]string{
		"abs":                 "-> " + filepath.Join(dir, "lib/libx.so.1"),
		"lib":                 "-> usr/lib",
		"usr/lib/libx.so.1":   "-> libx.so.1.2",
		"usr/lib/libx.so.1.2": "file",
	} {
		e, ok := tr.entries[filepath.Join(dir, p)]
		got := "missing"
		switch {
		case !ok:
		case e.link != "":
			got = "-> " + e.link
		default:
			got = "file"
		}
		if got != want {
			t.Errorf("%s: %s, want %s", p, got, want)
		}
	}

	// A file under a path that is a symlink in the tree would land
	// elsewhere than asked.
	if err := tr.Data(filepath.Join(dir, "lib/other"), nil, 0o644); err == nil || !strings.Contains(err.Error(), "already a file or symlink") {
		t.Errorf("adding under a symlink: %v", err)
	}
	if err := tr.Data(filepath.Join(dir, "abs"), []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("adding a path twice differently: %v", err)
	}
	if err := tr.Data("relative", nil, 0o644); err == nil {
		t.Error("a relative path was accepted")
	}
}

// TestLibraryPath sets LD_LIBRARY_PATH only for a library outside the
// loader's own directories.
func TestLibraryPath(t *testing.T) {
	tr := NewTree()
	tr.Data("/usr/lib/x86_64-linux-gnu/libc.so.6", nil, 0o644)
	tr.Data("/usr/share/doc/libfoo.so/copyright", nil, 0o644)
	if got := libraryPath(tr); got != "" {
		t.Errorf("system libraries only: %q, want none", got)
	}
	tr.Data("/usr/local/lib/libfoo.so.1", nil, 0o644)
	if got := libraryPath(tr); got != "LD_LIBRARY_PATH=/usr/local/lib" {
		t.Errorf("a library in /usr/local/lib: %q", got)
	}
}
