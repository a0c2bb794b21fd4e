// Package onnxfile lists the files ONNX Runtime reads to load a model: the
// .onnx file and the external data files its tensors name, each checked to
// be a readable, non-empty regular file. It reads only the protobuf's
// structure, seeking past tensor data, so a multi-gigabyte model costs a
// few reads, and it needs no ONNX Runtime.
package onnxfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"
)

// Files returns path followed by the external data files its tensors keep
// their data in, in the order they are first named, or an error naming
// the file that is missing, unreadable or empty, or saying why path is not
// an ONNX model.
func Files(path string) ([]string, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	w := &walker{r: &reader{f: f}, seen: map[string]bool{}}
	if err := w.message(msgModel, 0, st.Size(), 0); err != nil {
		return nil, fmt.Errorf("%s is not a valid ONNX model: %w", path, err)
	}
	files := []string{path}
	dir := filepath.Dir(path)
	for _, ext := range w.external {
		p := filepath.Join(dir, ext.location)
		g, err := Open(p)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q keeps its data in %s: %w", path, ext.tensor, ext.location, err)
		}
		g.Close()
		files = append(files, p)
	}
	return files, nil
}

// Open opens path for reading if it is a regular file with at least one
// byte, the checks a model's files must pass before ONNX Runtime sees them.
func Open(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil {
		var b [1]byte
		if _, err = f.ReadAt(b[:], 0); errors.Is(err, io.EOF) {
			err = fmt.Errorf("%s is empty", path)
		} else if err != nil {
			err = fmt.Errorf("cannot read %s: %w", path, err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// The messages of onnx.proto that can hold a tensor, and for each the
// fields that lead to one (field numbers from onnx.proto).
type msgKind int

const (
	msgNone msgKind = iota
	msgModel
	msgFunction
	msgGraph
	msgNode
	msgAttribute
	msgSparse
	msgTensor
)

var children = map[msgKind]map[protowire.Number]msgKind{
	msgModel:     {7: msgGraph, 25: msgFunction},
	msgFunction:  {7: msgNode},
	msgGraph:     {1: msgNode, 5: msgTensor, 15: msgSparse},
	msgNode:      {5: msgAttribute},
	msgAttribute: {5: msgTensor, 6: msgGraph, 10: msgTensor, 11: msgGraph, 22: msgSparse, 23: msgSparse},
	msgSparse:    {1: msgTensor, 2: msgTensor},
}

// TensorProto's fields that say where its data is.
const (
	tensorName         = 8
	tensorExternalData = 13
	tensorDataLocation = 14
	locationExternal   = 1
)

// maxDepth bounds graphs nested in node attributes; real models nest a few.
const maxDepth = 64

// maxString bounds a tensor name or external data entry read into memory.
const maxString = 1 << 16

type external struct{ tensor, location string }

type walker struct {
	r        *reader
	external []external
	seen     map[string]bool
}

// message walks the fields of a message of kind k in [off, end).
func (w *walker) message(k msgKind, off, end int64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("graphs nested more than %d deep", maxDepth)
	}
	var name, location string
	isExternal := false
	for off < end {
		num, typ, n := protowire.ConsumeTag(w.r.peek(off, end))
		if n < 0 {
			return w.bad(off, n)
		}
		off += int64(n)
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(w.r.peek(off, end))
			if n < 0 {
				return w.bad(off, n)
			}
			off += int64(n)
			if k == msgTensor && num == tensorDataLocation {
				isExternal = v == locationExternal
			}
		case protowire.Fixed32Type:
			off += 4
		case protowire.Fixed64Type:
			off += 8
		case protowire.BytesType:
			l, n := protowire.ConsumeVarint(w.r.peek(off, end))
			if n < 0 {
				return w.bad(off, n)
			}
			off += int64(n)
			if l > uint64(end-off) {
				return fmt.Errorf("at byte %d: a field of %d bytes runs past the end of its message", off, l)
			}
			switch child := children[k][num]; {
			case child != msgNone:
				if err := w.message(child, off, off+int64(l), depth+1); err != nil {
					return err
				}
			case k == msgTensor && num == tensorName:
				b, err := w.r.read(off, l)
				if err != nil {
					return err
				}
				name = string(b)
			case k == msgTensor && num == tensorExternalData:
				b, err := w.r.read(off, l)
				if err != nil {
					return err
				}
				key, value, err := entry(b)
				if err != nil {
					return fmt.Errorf("at byte %d: %w", off, err)
				}
				if key == "location" {
					location = value
				}
			}
			off += int64(l)
		default:
			return fmt.Errorf("at byte %d: wire type %d is not used by ONNX", off, typ)
		}
	}
	if off != end {
		return fmt.Errorf("a fixed-size field runs past the end of its message at byte %d", end)
	}
	if !isExternal {
		return nil
	}
	switch {
	case location == "":
		return fmt.Errorf("tensor %q has external data but no location", name)
	case !filepath.IsLocal(location):
		return fmt.Errorf("tensor %q keeps its data in %q, outside the model's folder", name, location)
	}
	location = filepath.Clean(location)
	if !w.seen[location] {
		w.seen[location] = true
		w.external = append(w.external, external{name, location})
	}
	return nil
}

// bad is the error of a field that does not parse at off: the read error
// that cut the data short, if there was one.
func (w *walker) bad(off int64, n int) error {
	if w.r.err != nil {
		return w.r.err
	}
	return fmt.Errorf("at byte %d: %w", off, protowire.ParseError(n))
}

// entry parses a StringStringEntryProto: key 1, value 2.
func entry(b []byte) (key, value string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", protowire.ParseError(n)
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", "", protowire.ParseError(n)
		}
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			v, _ := protowire.ConsumeBytes(b)
			if num == 1 {
				key = string(v)
			} else {
				value = string(v)
			}
		}
		b = b[n:]
	}
	return key, value, nil
}

// reader reads a file through a small window, so that walking the
// structure costs few reads and skipping tensor data costs none.
type reader struct {
	f      io.ReaderAt
	buf    []byte
	bufOff int64
	err    error
}

const window = 8 << 10

// peek returns up to a varint's worth of bytes at off, not past end; fewer
// (or none) at the end of the data or after a read error, which the
// protowire decoder then reports as truncated.
func (r *reader) peek(off, end int64) []byte {
	n := min(int64(maxVarint), end-off)
	if n <= 0 {
		return nil
	}
	if off < r.bufOff || off+n > r.bufOff+int64(len(r.buf)) {
		r.fill(off)
	}
	lo := off - r.bufOff
	if lo < 0 || lo >= int64(len(r.buf)) {
		return nil
	}
	return r.buf[lo:min(lo+n, int64(len(r.buf)))]
}

// maxVarint is the longest varint.
const maxVarint = 10

func (r *reader) fill(off int64) {
	if r.buf == nil {
		r.buf = make([]byte, window)
	}
	r.buf = r.buf[:cap(r.buf)]
	n, err := r.f.ReadAt(r.buf, off)
	r.buf, r.bufOff = r.buf[:n], off
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
}

// read returns the n bytes at off, at most maxString.
func (r *reader) read(off int64, n uint64) ([]byte, error) {
	if n > maxString {
		return nil, fmt.Errorf("at byte %d: a name of %d bytes", off, n)
	}
	b := make([]byte, n)
	if _, err := r.f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}
