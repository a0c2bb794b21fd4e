package image

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The image tests build aiassistd and mkimage once, as `make image`
// does, and run mkimage as a program: under -race the image's gzip
// compression in the test process would take minutes.

var (
	toolsOnce sync.Once
	toolsDir  string
	toolsErr  error

	archiveOnce   sync.Once
	archivePath   string
	archiveDigest string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if toolsDir != "" {
		os.RemoveAll(toolsDir)
	}
	os.Exit(code)
}

// testEpoch is the time of the test images' files.
const testEpoch = 1764633600

// tools builds aiassistd and mkimage without -race (after `make test`'s
// vet has compiled their packages, that is the link alone).
func tools(t *testing.T) (daemon, mkimage string) {
	t.Helper()
	toolsOnce.Do(func() {
		toolsDir, toolsErr = os.MkdirTemp("", "aiassist-image-test-")
		if toolsErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"aiassistd", "../../cmd/aiassistd"},
			{"mkimage", "./cmd/mkimage"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(toolsDir, b.out), "-ldflags", "-X main.version=1.2.3-test", b.pkg)
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				toolsErr = fmt.Errorf("cannot build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return filepath.Join(toolsDir, "aiassistd"), filepath.Join(toolsDir, "mkimage")
}

// runMkimage builds the image of testOptions to out and returns its digest
// as mkimage prints it.
func runMkimage(t *testing.T, out string, epoch int64) string {
	t.Helper()
	daemon, mkimage := tools(t)
	o := testOptions(t, daemon)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mkimage,
		"-binary", o.Binary, "-library", o.Library, "-library-license", o.LibraryLicense,
		"-config", o.Config, "-models", o.Models, "-version", o.Version, "-revision", o.Revision,
		"-source", o.Source, "-licenses", o.Licenses, "-epoch", strconv.FormatInt(epoch, 10),
		"-out", out, "-list", out+".files")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mkimage: %v\n%s", err, b)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || !strings.HasPrefix(f[len(f)-1], "sha256:") {
		t.Fatalf("mkimage printed %q, want the archive, its names and its digest", b)
	}
	return f[len(f)-1]
}

// sharedArchive is the image of testOptions, built once for all tests.
func sharedArchive(t *testing.T) (path, digest string) {
	t.Helper()
	tools(t)
	archiveOnce.Do(func() {
		archivePath = filepath.Join(toolsDir, "aiassist.oci.tar")
		start := time.Now()
		archiveDigest = runMkimage(t, archivePath, testEpoch)
		t.Logf("mkimage built %s in %.1fs", archiveDigest, time.Since(start).Seconds())
	})
	if archiveDigest == "" {
		t.Fatal("the shared image archive was not built (see the first test that asked for it)")
	}
	return archivePath, archiveDigest
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
