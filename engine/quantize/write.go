package quantize

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/aiassist/aiassist/engine/internal/onnxfile"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

// maxInline is the largest model Save writes as one file: protobuf's limit
// is 2 GB, and ONNX Runtime's reader refuses a file close to it.
var maxInline = 2<<30 - 64<<20

// externalMin is the smallest tensor Save moves to external data, onnx's
// own threshold: shape tensors stay inline for shape inference.
const externalMin = 1024

// Save writes m to path, replacing it atomically. A model too large for
// one protobuf keeps its tensors of 1 KB or more in path+"_data" beside
// it, the layout Load and ONNX Runtime read. It returns the files written.
func Save(path string, m *onnxpb.ModelProto) ([]string, error) {
	if proto.Size(m) <= maxInline {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the model for %s: %w", path, err)
		}
		return []string{path}, writeFile(path, b)
	}
	m = proto.Clone(m).(*onnxpb.ModelProto)
	data := filepath.Base(path) + "_data"
	f, err := os.CreateTemp(filepath.Dir(path), "."+data+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	var off int64
	var werr error
	eachTensor(m, func(t *onnxpb.TensorProto) {
		if werr != nil || len(t.GetRawData()) < externalMin {
			return
		}
		n, err := f.Write(t.RawData)
		if err != nil {
			werr = err
			return
		}
		t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		t.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(data)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(off, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(n))},
		}
		t.RawData = nil
		off += int64(n)
	})
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return nil, fmt.Errorf("cannot write %s: %w", filepath.Join(filepath.Dir(path), data), werr)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(filepath.Dir(path), data)); err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", data, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the model for %s: %w", path, err)
	}
	return []string{path, filepath.Join(filepath.Dir(path), data)}, writeFile(path, b)
}

// writeFile writes b to path under a temporary name and renames it into
// place, so a reader never sees half a model.
func writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
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
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// File quantizes the model at in (with its external data) and writes the
// result to out, which must not be in. The summary's file sizes count
// every file of each model.
func File(in, out string, opts Options) (*Summary, error) {
	if a, b := filepath.Clean(in), filepath.Clean(out); a == b {
		return nil, fmt.Errorf("the output %s is the input: name another file", out)
	}
	srcFiles, err := onnxfile.Files(in)
	if err != nil {
		return nil, err
	}
	m, err := Load(in)
	if err != nil {
		return nil, err
	}
	q, sum, err := Model(m, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	files, err := Save(out, q)
	if err != nil {
		return nil, err
	}
	sum.FileBytesBefore, sum.FileBytesAfter = totalSize(srcFiles), totalSize(files)
	return sum, nil
}

func totalSize(files []string) int64 {
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}
