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
