package modelgen

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Write writes the preset into dir/<Name>/: model.onnx and any Files. It
// returns the paths written, model.onnx first and the rest sorted. Each file
// is replaced atomically, like WriteFile's model.
func (p Preset) Write(dir string) ([]string, error) {
	folder := filepath.Join(dir, p.Name)
	path := filepath.Join(folder, "model.onnx")
	if err := WriteFile(path, p.Build()); err != nil {
		return nil, err
	}
	written := []string{path}
	if p.Files == nil {
		return written, nil
	}
	files := p.Files()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(folder, name)
		if err := writeBytes(path, files[name]); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// writeBytes writes b to path under a temporary name and renames it into
// place, so a reader never sees a half-written file.
func writeBytes(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	return nil
}
