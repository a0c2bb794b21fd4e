package daemon

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/quantize"
	"github.com/aiassist/aiassist/schema"
)

// Models with quantization "int8" are served from runtime.cache_dir: each
// cache entry is a folder named by the key of its source, holding the INT8
// model under the source file's name (with its _data file when large), for
// a model kept as a folder (causal-lm) copies of the folder's other files (config JSON and
// tokenizer) at the same relative paths, so the loader finds them beside
// the model, SUMMARY.txt (what the quantizer did) and SHA256SUMS, written
// last, which lists every other file of the entry with its sha256. An
// entry is built in a temporary folder and renamed into place, so a crash
// leaves no half entry under the key; an entry whose files do not match
// SHA256SUMS, or that has none, is rebuilt. Copies rather than symlinks:
// the entry must not change when the source folder does, and the key
// already changes with every source file.

// quantizeOptions are those of `aiassistd quantize` with its defaults.
var quantizeOptions = quantize.Options{PerChannel: true, MinElements: quantize.DefaultMinElements}

// quantizations counts the models this process has quantized rather than
// taken from the cache.
var quantizations atomic.Int64

// cacheHint says how to fix a cache_dir the daemon cannot use.
const cacheHint = "set runtime.cache_dir to a folder the daemon's user may write (the systemd unit's StateDirectory makes /var/lib/aiassist one)"

// sumsFile is the manifest of a cache entry.
const sumsFile = "SHA256SUMS"

// maxSums bounds the manifest read back; an entry lists a few files.
const maxSums = 1 << 20

// loadSpec returns the model to open for spec: spec itself, or for
// quantization "int8" spec with Path at its INT8 form in the cache,
// quantized first if the cache holds no sound entry for it.
func loadSpec(logger *slog.Logger, cfg *schema.Config, spec schema.Model) (schema.Model, error) {
	if spec.Quantization != schema.QuantizationInt8 {
		return spec, nil
	}
	files, err := modelFiles(spec)
	if err != nil {
		return spec, err
	}
	src := spec.Path
	if isFolder(spec) {
		if src, err = folderModel(spec.Path, files); err != nil {
			return spec, err
		}
	}
	key, err := cacheKey(spec, files)
	if err != nil {
		return spec, err
	}
	if err := os.MkdirAll(cfg.Runtime.CacheDir, 0o750); err != nil {
		return spec, fmt.Errorf("runtime.cache_dir: cannot create %s: %w; %s", cfg.Runtime.CacheDir, err, cacheHint)
	}
	entry := filepath.Join(cfg.Runtime.CacheDir, key)
	load := spec
	load.Path = filepath.Join(entry, filepath.Base(spec.Path))
	if isFolder(spec) {
		load.Path = entry
	}
	switch err := checkEntry(entry); {
	case err == nil:
		logger.Info("using the cached quantized model", "model", spec.Name, "cache_entry", entry)
		return load, nil
	case !errors.Is(err, fs.ErrNotExist):
		logger.Warn("the cached quantized model is corrupt; quantizing again", "model", spec.Name, "cache_entry", entry, "err", err)
		if err := os.RemoveAll(entry); err != nil {
			return spec, fmt.Errorf("cannot remove the corrupt cache entry %s: %w", entry, err)
		}
	}
	start := time.Now()
	sum, err := buildEntry(cfg.Runtime.CacheDir, entry, spec, src, files)
	if err != nil {
		return spec, err
	}
	quantizations.Add(1)
	logger.Info("quantized model", "model", spec.Name, "cache_entry", entry,
		"rewritten_nodes", len(sum.Rewritten), "skipped_nodes", len(sum.Skipped),
		"bytes_before", sum.FileBytesBefore, "bytes_after", sum.FileBytesAfter,
		"duration_seconds", time.Since(start).Seconds())
	return load, nil
}

// folderModel returns the ONNX file among a causal-lm folder's files.
func folderModel(dir string, files []string) (string, error) {
	var onnx []string
	for _, f := range files {
		if strings.HasSuffix(f, ".onnx") {
			onnx = append(onnx, f)
		}
	}
	if len(onnx) != 1 {
		return "", fmt.Errorf("cannot quantize %s: want one .onnx file among its files, found %d", dir, len(onnx))
	}
	return onnx[0], nil
}

// cacheKey is the sha256, in hex, of the quantizer's version and options,
// the model's kind, and the relative name and sha256 of each of its files.
func cacheKey(spec schema.Model, files []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "aiassist quantize %s %+v %s\n", quantize.Version, quantizeOptions, spec.Kind)
	base := baseDir(spec)
	for _, f := range files {
		sum, err := fileSum(f)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(base, f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s  %s\n", sum, rel)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isFolder tells a model kept as a folder (causal-lm, or any kind whose
// path is a folder) from one kept as an ONNX file.
func isFolder(spec schema.Model) bool {
	st, err := os.Stat(spec.Path)
	return spec.Kind == schema.KindCausalLM || err == nil && st.IsDir()
}

// baseDir is the folder a model's files are named relative to.
func baseDir(spec schema.Model) string {
	if isFolder(spec) {
		return spec.Path
	}
	return filepath.Dir(spec.Path)
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkEntry verifies every file SHA256SUMS lists in entry. It returns an
// error wrapping fs.ErrNotExist when there is no entry.
func checkEntry(entry string) error {
	if _, err := os.Stat(entry); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(entry, sumsFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is missing", sumsFile)
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxSums))
	n := 0
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || !filepath.IsLocal(name) {
			return fmt.Errorf("%s has the malformed line %q", sumsFile, sc.Text())
		}
		got, err := fileSum(filepath.Join(entry, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s has sha256 %s, but %s says %s", name, got, sumsFile, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s lists no files", sumsFile)
	}
	return nil
}

// buildEntry quantizes src into a new cache entry, copying the other
// files of a causal-lm folder beside it.
func buildEntry(cacheDir, entry string, spec schema.Model, src string, files []string) (*quantize.Summary, error) {
	tmp, err := os.MkdirTemp(cacheDir, ".build-*")
	if err != nil {
		return nil, fmt.Errorf("runtime.cache_dir: %s is not writable: %w; %s", cacheDir, err, cacheHint)
	}
	defer os.RemoveAll(tmp)
	base := baseDir(spec)
	rel := func(p string) string { r, _ := filepath.Rel(base, p); return r }
	sum, err := quantize.File(src, filepath.Join(tmp, rel(src)), quantizeOptions)
	if err != nil {
		return nil, fmt.Errorf("cannot quantize: %w", err)
	}
	if isFolder(spec) {
		data, err := engine.TensorModelFiles(src)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if !slices.Contains(data, f) {
				if err := copyFile(f, filepath.Join(tmp, rel(f))); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "SUMMARY.txt"), []byte(sum.String()), 0o640); err != nil {
		return nil, err
	}
	if err := writeSums(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, entry); err != nil {
		// Another daemon sharing the folder may have put the same entry
		// there first.
		if checkEntry(entry) == nil {
			return sum, nil
		}
		return nil, fmt.Errorf("cannot put the quantized model in %s: %w", entry, err)
	}
	return sum, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot copy %s into the cache: %w", src, err)
	}
	return nil
}

// writeSums writes SHA256SUMS for every file under dir.
func writeSums(dir string) error {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		sum, err := fileSum(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, sumsFile), []byte(b.String()), 0o640)
}
