package modelgen

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aiassist/aiassist/engine/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Marshal serializes m deterministically, so equal models give equal bytes.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// WriteFile writes m to path, creating parent directories. The file is
// written under a temporary name and renamed into place, so a daemon watching
// the directory never loads a half-written model.
func WriteFile(path string, m *onnxpb.ModelProto) error {
	b, err := Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot marshal model for %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot create directory for model: %w", err)
	}
	return writeBytes(path, b)
}

// WriteFileExternal writes m to path with the data of every initializer
// of 1 KB or more moved to the file data beside it, as exporters do for
// models over 2 GB (Optimum writes model.onnx and model.onnx_data or
// model.onnx.data): the initializers keep their names, shapes and types
// and say where their bytes are. Smaller ones stay inline, as with onnx's
// convert_model_to_external_data, since ONNX Runtime's shape inference
// reads shape tensors only from the model file. m is not changed.
func WriteFileExternal(path string, m *onnxpb.ModelProto, data string) error {
	m = proto.Clone(m).(*onnxpb.ModelProto)
	var blob []byte
	for _, t := range m.GetGraph().GetInitializer() {
		if len(t.RawData) < externalThreshold {
			continue
		}
		off := len(blob)
		blob = append(blob, t.RawData...)
		t.RawData = nil
		t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		t.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(data)},
			{Key: proto.String("offset"), Value: proto.String(fmt.Sprint(off))},
			{Key: proto.String("length"), Value: proto.String(fmt.Sprint(len(blob) - off))},
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("cannot create directory for model: %w", err)
	}
	if err := writeBytes(filepath.Join(filepath.Dir(path), data), blob); err != nil {
		return err
	}
	return WriteFile(path, m)
}

// externalThreshold is onnx's default size_threshold for external data.
const externalThreshold = 1024
