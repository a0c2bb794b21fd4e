// Package image assembles the aiassist container image from files the
// build already has — the daemon, the ONNX Runtime library, the shared
// libraries the two need as the host's loader finds them, CA certificates
// and the demo models — with no base image, and writes it as an archive
// that `podman load` and `docker load` read. The same inputs give the same
// image digest: every time is Options.Created, entries are sorted and
// owners and modes fixed.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the image. README.md ("Run in a container") names them.
const (
	BinaryPath  = "/usr/bin/aiassistd"
	LibraryDir  = "/usr/lib/aiassist"
	ConfigPath  = "/etc/aiassist/config.cue"
	ModelsDir   = "/usr/share/aiassist/models"
	MountDir    = "/models"
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"

	// UID is the uid and gid of the aiassist user the daemon runs as.
	UID = 65532
	// Port is the port the default config listens on.
	Port = 8080
)

// Options are the inputs of an image.
type Options struct {
	// Binary is the aiassistd executable.
	Binary string
	// Library is the ONNX Runtime library file, such as
	// build/onnxruntime/libonnxruntime.so.1.24.1 (a symlink is followed).
	Library string
	// LibraryLicense is the ONNX Runtime license text.
	LibraryLicense string
	// Config is the default config file, installed at ConfigPath.
	Config string
	// Models is the folder of demo models, installed at ModelsDir.
	Models string

	// CACerts is the host's CA bundle. Default:
	// /etc/ssl/certs/ca-certificates.crt.
	CACerts string
	// LoaderConfig is the host's loader configuration. Default:
	// /etc/ld.so.conf.
	LoaderConfig string
	// PackageDB is dpkg's file lists folder. Default: /var/lib/dpkg/info.
	PackageDB string

	// Version, Revision, Source and Licenses fill the OCI labels of the
	// same names.
	Version, Revision, Source, Licenses string
	// Created is the time of every file and of the image: the commit's
	// time (SOURCE_DATE_EPOCH) for a reproducible build.
	Created time.Time
}

func (o *Options) defaults() error {
	if o.CACerts == "" {
		o.CACerts = CACertsPath
	}
	if o.LoaderConfig == "" {
		o.LoaderConfig = "/etc/ld.so.conf"
	}
	if o.PackageDB == "" {
		o.PackageDB = "/var/lib/dpkg/info"
	}
	for _, f := range []struct{ name, v string }{
		{"binary", o.Binary}, {"library", o.Library}, {"library license", o.LibraryLicense},
		{"config", o.Config}, {"models", o.Models}, {"version", o.Version},
	} {
		if f.v == "" {
			return fmt.Errorf("image: the %s is required", f.name)
		}
	}
	return nil
}

// Image is a built image and the files of each of its layers.
type Image struct {
	v1.Image
	// Files names each layer's files, in layer order.
	Files []Layer
}

// Layer is one layer's name and files.
type Layer struct {
	Name  string
	Paths []string
}

// Build assembles the image.
func Build(o Options) (*Image, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	lib, err := filepath.EvalSymlinks(o.Library)
	if err != nil {
		return nil, fmt.Errorf("cannot find the ONNX Runtime library: %w", err)
	}

	system, err := systemTree(o, lib)
	if err != nil {
		return nil, err
	}
	ort := NewTree()
	libName := filepath.Base(lib)
	steps := []error{
		ort.File(path.Join(LibraryDir, libName), lib, 0o644),
		ort.File(path.Join(LibraryDir, "onnxruntime-LICENSE"), o.LibraryLicense, 0o644),
	}
	// The daemon looks for libonnxruntime.so and libonnxruntime.so.1.
	for _, n := range []string{"libonnxruntime.so", "libonnxruntime.so.1"} {
		if n != libName {
			steps = append(steps, ort.Symlink(path.Join(LibraryDir, n), libName))
		}
	}
	app := NewTree()
	steps = append(steps,
		app.File(BinaryPath, o.Binary, 0o755),
		app.File(ConfigPath, o.Config, 0o644),
		app.CopyDir(ModelsDir, o.Models),
	)
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	out := &Image{}
	var adds []mutate.Addendum
	for _, l := range []struct {
		name string
		tree *Tree
	}{
		{"system libraries, CA certificates, users", system},
		{"ONNX Runtime " + libName, ort},
		{"aiassistd " + o.Version + ", default config, demo models", app},
	} {
		var buf bytes.Buffer
		if err := l.tree.Tar(&buf, o.Created); err != nil {
			return nil, err
		}
		b := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("cannot make the layer of %s: %w", l.name, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "mkimage: " + l.name},
		})
		out.Files = append(out.Files, Layer{Name: l.name, Paths: l.tree.Paths()})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = "amd64"
	cf.OS = "linux"
	cf.Created = v1.Time{Time: o.Created}
	cf.Config = v1.Config{
		User:       strconv.Itoa(UID) + ":" + strconv.Itoa(UID),
		Entrypoint: []string{BinaryPath, "serve", "-config", ConfigPath},
		Env:        []string{"PATH=/usr/bin"},
		WorkingDir: "/",
		ExposedPorts: map[string]struct{}{
			strconv.Itoa(Port) + "/tcp": {},
		},
		StopSignal: "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":    "aiassist",
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.revision": o.Revision,
			"org.opencontainers.image.source":   o.Source,
			"org.opencontainers.image.licenses": o.Licenses,
			"org.opencontainers.image.created":  o.Created.Format(time.RFC3339),
		},
	}
	if env := libraryPath(system); env != "" {
		cf.Config.Env = append(cf.Config.Env, env)
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	out.Image = img
	return out, nil
}

// libraryPath returns an LD_LIBRARY_PATH setting when a library landed
// outside the directories the image's loader searches on its own (it has
// no /etc/ld.so.cache), as one from /usr/local/lib would; else "".
func libraryPath(system *Tree) string {
	std := map[string]bool{}
	for _, d := range defaultLibDirs {
		std[d] = true
	}
	var extra []string
	seen := map[string]bool{}
	for _, p := range system.Paths() {
		e := system.entries[p]
		if e.typ != tar.TypeReg || !strings.Contains(path.Base(p), ".so") || strings.HasPrefix(p, "/usr/share/") {
			continue
		}
		if d := path.Dir(p); !std[d] && !seen[d] {
			seen[d] = true
			extra = append(extra, d)
		}
	}
	if len(extra) == 0 {
		return ""
	}
	sort.Strings(extra)
	return "LD_LIBRARY_PATH=" + strings.Join(extra, ":")
}

// systemTree is the first layer: the libraries the daemon and the ONNX
// Runtime library need with their copyright files, the CA bundle, the
// aiassist user, and the folders a container needs.
func systemTree(o Options, lib string) (*Tree, error) {
	res, err := HostResolver(o.LoaderConfig)
	if err != nil {
		return nil, err
	}
	libs, err := res.Needed(o.Binary, lib)
	if err != nil {
		return nil, err
	}
	pkgs, err := ReadPackages(o.PackageDB)
	if err != nil {
		return nil, err
	}
	t := NewTree()
	docs := map[string]bool{}
	for _, l := range libs {
		real, err := t.HostPath(l.Path)
		if err != nil {
			return nil, err
		}
		name, err := pkgs.Owner(l.Path, real)
		if err != nil {
			return nil, err
		}
		docs[name] = true
	}
	if _, err := t.HostPath(o.CACerts); err != nil {
		return nil, fmt.Errorf("%w (apt-get install ca-certificates)", err)
	}
	docs["ca-certificates"] = true
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := t.HostPath(Copyright(n)); err != nil {
			return nil, err
		}
	}
	id := strconv.Itoa(UID)
	for _, err := range []error{
		t.Data("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\naiassist:x:"+id+":"+id+":aiassist:/nonexistent:/sbin/nologin\n"), 0o644),
		t.Data("/etc/group", []byte("root:x:0:\naiassist:x:"+id+":\n"), 0o644),
		t.Dir("/tmp", 0o777|fs.ModeSticky),
		t.Dir(MountDir, 0o755),
	} {
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}
