package image

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ortLibrary returns the ONNX Runtime library the build fetched. CI has
// it, so there its absence fails the test.
func ortLibrary(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("ONNXRUNTIME_LIB"), "../../build/onnxruntime/libonnxruntime.so"} {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	why := "ONNX Runtime not found in $ONNXRUNTIME_LIB or ../../build/onnxruntime; run packaging/fetch-onnxruntime.sh"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: " + why)
	}
	t.Skip(why)
	return ""
}

func testOptions(t *testing.T, binary string) Options {
	return Options{
		Binary:         binary,
		Library:        ortLibrary(t),
		LibraryLicense: "../onnxruntime.LICENSE",
		Config:         "config.cue",
		Models:         "../../examples/models",
		Version:        "1.2.3-test",
		Revision:       "0123456789abcdef0123456789abcdef01234567",
		Source:         "https://example.com/aiassist",
		Licenses:       "NOASSERTION",
		Created:        time.Unix(1764633600, 0),
	}
}

// configCreated is the creation time in the image's config.
func (img *Image) configCreated(t *testing.T) time.Time {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Created.Time
}

// TestReproducible runs mkimage twice on the real daemon and ONNX Runtime
// and gets the same digest and the same archive bytes, and checks that the
// image holds what it must: the libraries both need, their copyright
// files, the ONNX Runtime license, the config and the demo models.
func TestReproducible(t *testing.T) {
	a1, d1 := sharedArchive(t)
	a2 := filepath.Join(t.TempDir(), "again.oci.tar")
	if d2 := runMkimage(t, a2, testEpoch); d2 != d1 {
		t.Fatalf("two builds of the same inputs have the digests %s and %s", d1, d2)
	}
	if s1, s2 := fileSum(t, a1), fileSum(t, a2); s1 != s2 {
		t.Fatalf("two builds of the same inputs wrote different archives: sha256 %x and %x", s1, s2)
	}
	list, err := os.ReadFile(a1 + ".files")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(list), "\n") {
		have[l] = true
	}
	for _, p := range []string{
		BinaryPath, ConfigPath, CACertsPath,
		LibraryDir + "/libonnxruntime.so.1.24.1", LibraryDir + "/libonnxruntime.so", LibraryDir + "/onnxruntime-LICENSE",
		"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
		"/usr/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/lib64", "/lib",
		"/usr/share/doc/libc6/copyright", "/usr/share/doc/libstdc++6", "/usr/share/doc/libgcc-s1", "/usr/share/doc/ca-certificates/copyright",
		ModelsDir + "/tiny-llama/model.onnx", ModelsDir + "/tiny-llama/tokenizer.json", ModelsDir + "/demo-mlp/model.onnx",
		"/etc/passwd", "/etc/group", MountDir, "/tmp",
	} {
		if !have[p] {
			t.Errorf("the image has no %s; its files:\n%s", p, list)
		}
	}
}

// TestLayers builds an image in the test (a small program and library
// stand in for the daemon and ONNX Runtime, whose compression under -race
// would take minutes; the layers are read uncompressed) and reads every
// layer back: sorted entries, all owned by root, all at the given time,
// the aiassist user; and the config's time, user, entrypoint, port and
// labels. TestReproducible builds the real image twice.
func TestLayers(t *testing.T) {
	prog, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to stand in for the daemon")
	}
	lib := filepath.Join(t.TempDir(), "libonnxruntime.so.1.24.1")
	b, err := os.ReadFile("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1")
	if err != nil {
		t.Skipf("no libgcc_s to stand in for ONNX Runtime: %v", err)
	}
	if err := os.WriteFile(lib, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{
		Binary: prog, Library: lib, LibraryLicense: "../onnxruntime.LICENSE", Config: "config.cue",
		Models: "../../examples/models", Version: "1.2.3-test", Revision: "0123456789abcdef0123456789abcdef01234567",
		Source: "https://example.com/aiassist", Licenses: "NOASSERTION", Created: time.Unix(testEpoch, 0),
	}
	img, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.configCreated(t); !got.Equal(o.Created) {
		t.Errorf("the image was created at %v, want %v", got, o.Created)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(img.Files) {
		t.Fatalf("%d layers, %d file lists", len(layers), len(img.Files))
	}
	files := map[string]string{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		var prev string
		n := 0
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
			name := "/" + strings.TrimSuffix(h.Name, "/")
			if name <= prev {
				t.Errorf("layer %d: %s after %s: entries not sorted", i, name, prev)
			}
			prev = name
			if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
				t.Errorf("layer %d: %s owned by %d:%d (%q:%q), want 0:0", i, name, h.Uid, h.Gid, h.Uname, h.Gname)
			}
			if !h.ModTime.Equal(time.Unix(testEpoch, 0)) {
				t.Errorf("layer %d: %s has time %v", i, name, h.ModTime)
			}
			switch h.Typeflag {
			case tar.TypeReg:
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				files[name] = string(b)
			case tar.TypeSymlink:
				files[name] = "-> " + h.Linkname
			case tar.TypeDir:
				if name == "/tmp" && h.Mode != 0o1777 {
					t.Errorf("/tmp has mode %o, want 1777", h.Mode)
				}
			}
		}
		rc.Close()
		if n != len(img.Files[i].Paths) {
			t.Errorf("layer %d has %d entries, its file list %d", i, n, len(img.Files[i].Paths))
		}
	}
	for _, p := range []string{BinaryPath, ConfigPath, CACertsPath, "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/share/doc/libc6/copyright"} {
		if _, ok := files[p]; !ok {
			t.Errorf("the image has no %s", p)
		}
	}
	if files[LibraryDir+"/libonnxruntime.so"] != "-> libonnxruntime.so.1.24.1" || files[LibraryDir+"/libonnxruntime.so.1"] != "-> libonnxruntime.so.1.24.1" {
		t.Errorf("libonnxruntime.so and .so.1 are %q and %q, want symlinks to the library", files[LibraryDir+"/libonnxruntime.so"], files[LibraryDir+"/libonnxruntime.so.1"])
	}
	if !strings.Contains(files["/etc/passwd"], "aiassist:x:65532:65532:") || !strings.Contains(files["/etc/group"], "aiassist:x:65532:") {
		t.Errorf("no aiassist user 65532: passwd %q, group %q", files["/etc/passwd"], files["/etc/group"])
	}
	for p := range files {
		if strings.Contains(p, "/.") {
			t.Errorf("the image has the hidden file %s", p)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/usr/bin/aiassistd serve -config /etc/aiassist/config.cue" {
		t.Errorf("user %q, entrypoint %q", c.User, c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 8080/tcp", c.ExposedPorts)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.licenses": o.Licenses,
		"org.opencontainers.image.title":    "aiassist",
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
}

// TestNeeded resolves the ONNX Runtime library's dependencies as the
// host's loader would.
func TestNeeded(t *testing.T) {
	r, err := HostResolver("/etc/ld.so.conf")
	if err != nil {
		t.Fatal(err)
	}
	libs, err := r.Needed(ortLibrary(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range libs {
		names = append(names, l.Name)
		if _, err := os.Stat(l.Path); err != nil {
			t.Errorf("%s: %v", l.Name, err)
		}
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"ld-linux-x86-64.so.2", "libc.so.6", "libgcc_s.so.1", "libm.so.6", "libstdc++.so.6"} {
		if !strings.Contains(got, want) {
			t.Errorf("needed %q, want %s among them", got, want)
		}
	}

	empty := &Resolver{Dirs: []string{t.TempDir()}}
	if _, err := empty.Needed(ortLibrary(t)); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Errorf("resolving in an empty folder: %v, want an error naming what is missing", err)
	}
}
