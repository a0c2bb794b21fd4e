package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is one file, directory or symlink of a layer.
type entry struct {
	typ  byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode int64
	// src is the host file a regular entry is read from, or data its
	// content when src is empty.
	src  string
	data []byte
	link string
}

// Tree is the content of one layer, keyed by absolute path. Its tar form
// depends on nothing but the entries and the time given to Tar: entries
// are sorted, owners, modes and times fixed, so the same inputs give the
// same bytes and the same digest.
type Tree struct {
	entries map[string]*entry
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]*entry{}} }

func clean(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("image path %q is not absolute", p)
	}
	return path.Clean(p), nil
}

// add puts e at p, making its parent directories. A path added twice must
// be added the same way; a parent that is a symlink in the tree is an
// error, since the file would land elsewhere than asked.
func (t *Tree) add(p string, e *entry) error {
	p, err := clean(p)
	if err != nil {
		return err
	}
	if p == "/" {
		return nil
	}
	if err := t.Dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	if old, ok := t.entries[p]; ok {
		if old.typ != e.typ || old.link != e.link || old.src != e.src || !bytes.Equal(old.data, e.data) || old.mode != e.mode {
			return fmt.Errorf("image path %s is added twice with different content", p)
		}
		return nil
	}
	t.entries[p] = e
	return nil
}

// Dir adds the directory p and its parents.
func (t *Tree) Dir(p string, mode fs.FileMode) error {
	p, err := clean(p)
	if err != nil {
		return err
	}
	for _, q := range parents(p) {
		old, ok := t.entries[q]
		switch {
		case !ok:
			m := int64(0o755)
			if q == p {
				m = int64(mode.Perm())
				if mode&fs.ModeSticky != 0 {
					m |= 0o1000
				}
			}
			t.entries[q] = &entry{typ: tar.TypeDir, mode: m}
		case old.typ != tar.TypeDir:
			return fmt.Errorf("image path %s is needed as a directory but is already a file or symlink", q)
		}
	}
	return nil
}

// parents lists p's ancestors below "/" and p itself, outermost first.
func parents(p string) []string {
	var out []string
	for q := p; q != "/"; q = path.Dir(q) {
		out = append(out, q)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// File adds the host file src at p with the given mode.
func (t *Tree) File(p, src string, mode fs.FileMode) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("cannot add %s to the image: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("cannot add %s to the image: not a regular file", src)
	}
	return t.add(p, &entry{typ: tar.TypeReg, mode: int64(mode.Perm()), src: src})
}

// Data adds a file holding data at p.
func (t *Tree) Data(p string, data []byte, mode fs.FileMode) error {
	return t.add(p, &entry{typ: tar.TypeReg, mode: int64(mode.Perm()), data: data})
}

// Symlink adds a symlink at p pointing to target.
func (t *Tree) Symlink(p, target string) error {
	return t.add(p, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target})
}

// HostPath adds the host file at p under the same path, with every
// symlink met on the way (such as /lib -> usr/lib on a merged-/usr system)
// added as the same symlink, so the path resolves in the image as on the
// host. It returns the path of the regular file the chain ends at.
func (t *Tree) HostPath(p string) (string, error) {
	return t.hostPath(p, 0)
}

func (t *Tree) hostPath(p string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("cannot add %s to the image: too many levels of symlinks", p)
	}
	p, err := clean(p)
	if err != nil {
		return "", err
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		st, err := os.Lstat(next)
		if err != nil {
			return "", fmt.Errorf("cannot add %s to the image: %w", p, err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(next)
			if err != nil {
				return "", fmt.Errorf("cannot add %s to the image: %w", p, err)
			}
			if err := t.Symlink(next, target); err != nil {
				return "", err
			}
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			return t.hostPath(path.Join(append([]string{target}, parts[i+1:]...)...), depth+1)
		}
		if i == len(parts)-1 {
			if st.IsDir() {
				return "", fmt.Errorf("cannot add %s to the image: it is a directory", p)
			}
			mode := st.Mode().Perm()
			return next, t.File(next, next, mode)
		}
		cur = next
	}
	return "", fmt.Errorf("cannot add %s to the image: empty path", p)
}

// CopyDir adds every file under the host directory src below dst, in
// sorted order, files mode 0644 and directories 0755, leaving out hidden
// files (.gitignore). Symlinks are refused: a model folder is plain files.
func (t *Tree) CopyDir(dst, src string) error {
	if err := t.Dir(dst, 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := path.Join(dst, filepath.ToSlash(rel))
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			return t.Dir(to, 0o755)
		case d.Type().IsRegular():
			return t.File(to, p, 0o644)
		default:
			return fmt.Errorf("cannot add %s to the image: only regular files and directories are copied", p)
		}
	})
}

// Paths lists the tree's paths in tar order.
func (t *Tree) Paths() []string {
	ps := make([]string, 0, len(t.entries))
	for p := range t.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Tar writes the tree as a tar stream: sorted paths, every entry owned by
// root (uid and gid 0, no names), every time mtime.
func (t *Tree) Tar(w io.Writer, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, p := range t.Paths() {
		e := t.entries[p]
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     strings.TrimPrefix(p, "/"),
			Linkname: e.link,
			Mode:     e.mode,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		var data []byte
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			data = e.data
			if e.src != "" {
				b, err := os.ReadFile(e.src)
				if err != nil {
					return fmt.Errorf("cannot add %s to the image: %w", e.src, err)
				}
				data = b
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("cannot write %s: %w", p, err)
		}
	}
	return tw.Close()
}
