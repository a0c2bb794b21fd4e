package testpaths

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNeedFailsInCI runs a test that needs a missing file in a child
// process, once with CI=true and once without: it must fail in CI and skip
// elsewhere.
func TestNeedFailsInCI(t *testing.T) {
	if os.Getenv("TESTPATHS_CHILD") == "1" {
		Need(t, filepath.Join(t.TempDir(), "missing"))
		return
	}
	f := func(ci, want string, wantFail bool) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestNeedFailsInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTPATHS_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != wantFail || !strings.Contains(string(out), want) {
			t.Errorf("CI=%q: err %v, output:\n%s\nwant %q", ci, err, out, want)
		}
	}
	f("true", "--- FAIL", true)
	f("", "--- SKIP", false)
}

func TestNeedExisting(t *testing.T) {
	if got := Need(t, RepoRoot(t)); got != RepoRoot(t) {
		t.Errorf("Need = %q", got)
	}
}
