package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WriteArchive writes img as one tar that is both an OCI image layout
// (oci-layout, index.json, blobs/sha256/...) and a `docker save` archive
// (manifest.json naming the same blobs), as Docker 25 and later write
// them: `podman load`, `docker load` and `skopeo inspect oci-archive:`
// or `docker-archive:` all read it. refs are the image's names, such as
// "aiassist:1.2.0" and "aiassist:latest". Entries are sorted and their
// times are mtime, so the same image gives the same bytes.
func WriteArchive(w io.Writer, img v1.Image, refs []string, mtime time.Time) error {
	if len(refs) == 0 {
		return fmt.Errorf("image: an archive needs at least one name")
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}

	type blob struct {
		name string
		size int64
		open func() (io.ReadCloser, error)
	}
	bytesBlob := func(h v1.Hash, b []byte) blob {
		return blob{blobPath(h), int64(len(b)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	blobs := []blob{bytesBlob(digest, manifest), bytesBlob(configName, config)}
	var layerPaths []string
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		blobs = append(blobs, blob{blobPath(h), size, l.Compressed})
		layerPaths = append(layerPaths, blobPath(h))
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })

	// The index lists the manifest once per name, as `docker save` does
	// for an image of several tags.
	var descs []map[string]any
	for _, ref := range refs {
		descs = append(descs, map[string]any{
			"mediaType": types.OCIManifestSchema1,
			"digest":    digest.String(),
			"size":      len(manifest),
			"annotations": map[string]string{
				"io.containerd.image.name":          "docker.io/library/" + ref,
				"org.opencontainers.image.ref.name": tagOf(ref),
			},
		})
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIImageIndex,
		"manifests":     descs,
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(configName),
		"RepoTags": refs,
		"Layers":   layerPaths,
	}})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime})
	}
	file := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("image: %s has %d bytes, not the %d its descriptor says", name, n, size)
		}
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, b := range blobs {
		rc, err := b.open()
		if err != nil {
			return err
		}
		err = file(b.name, b.size, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("cannot write %s: %w", b.name, err)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"index.json", indexJSON},
		{"manifest.json", dockerJSON},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	} {
		if err := file(f.name, int64(len(f.data)), bytes.NewReader(f.data)); err != nil {
			return err
		}
	}
	return tw.Close()
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// tagOf returns the tag of a name such as "aiassist:1.2.0".
func tagOf(ref string) string {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return ref[i+1:]
		}
	}
	return "latest"
}
