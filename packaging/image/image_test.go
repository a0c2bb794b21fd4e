package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
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
		LibraryLicense: "onnxruntime-LICENSE",
		Config:         "config.cue",
		Models:         "../../examples/models",
		Version:        "1.2.3-test",
		Revision:       "0123456789abcdef0123456789abcdef01234567",
		Source:         "https://example.com/aiassist",
		Licenses:       "NOASSERTION",
		Created:        time.Unix(1764633600, 0),
	}
}

func archive(t *testing.T, o Options) (digest string, sum [32]byte, img *Image) {
	t.Helper()
	img, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, img, []string{"aiassist:" + o.Version, "aiassist:latest"}, o.Created); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), sha256.Sum256(buf.Bytes()), img
}

// TestReproducible builds the image twice from the same inputs (the test
// binary stands in for the daemon: any ELF program does) and gets the same
// digest and the same archive bytes; another time gives another digest.
// It also reads every layer back: sorted entries, all owned by root, all
// at the given time, and the files the image must hold.
func TestReproducible(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t, exe)
	d1, s1, img := archive(t, o)
	d2, s2, _ := archive(t, o)
	if d1 != d2 || s1 != s2 {
		t.Fatalf("two builds of the same inputs differ: digest %s and %s, archive sha256 %x and %x", d1, d2, s1, s2)
	}
	o.Created = o.Created.Add(time.Second)
	if d3, _, _ := archive(t, o); d3 == d1 {
		t.Fatalf("a build at another time has the same digest %s: the time is not in the image", d3)
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
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
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
			if !h.ModTime.Equal(time.Unix(1764633600, 0)) {
				t.Errorf("layer %d: %s has time %v", i, name, h.ModTime)
			}
			switch h.Typeflag {
			case tar.TypeReg:
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) < 4096 {
					files[name] = string(b)
				} else {
					files[name] = "(large)"
				}
			case tar.TypeSymlink:
				files[name] = "-> " + h.Linkname
			}
		}
		if n != len(img.Files[i].Paths) {
			t.Errorf("layer %d has %d entries, its file list %d", i, n, len(img.Files[i].Paths))
		}
	}
	for _, p := range []string{
		BinaryPath, ConfigPath, CACertsPath,
		LibraryDir + "/libonnxruntime.so.1.24.1", LibraryDir + "/libonnxruntime.so", LibraryDir + "/onnxruntime-LICENSE",
		"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
		"/usr/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/lib",
		"/usr/share/doc/libc6/copyright", "/usr/share/doc/libstdc++6", "/usr/share/doc/ca-certificates/copyright",
		ModelsDir + "/tiny-llama/model.onnx", ModelsDir + "/demo-mlp/model.onnx",
		"/etc/passwd", "/etc/group",
	} {
		if _, ok := files[p]; !ok {
			t.Errorf("the image has no %s", p)
		}
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
