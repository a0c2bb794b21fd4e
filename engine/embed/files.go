package embed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aiassist/aiassist/engine/internal/onnxfile"
)

// folder is an encoder export as Load reads it.
type folder struct {
	model, tokenizer string
	files            []string
	// maxPositions and hidden are config.json's max_position_embeddings
	// and hidden_size; 0 when it gives none.
	maxPositions, hidden int
}

// ModelFiles returns the files Load reads from the folder dir, checked to
// be readable: model.onnx and its external data, tokenizer.json and
// config.json. Their list is what identifies the model.
func ModelFiles(dir string) ([]string, error) {
	f, err := resolve(dir)
	if err != nil {
		return nil, err
	}
	return f.files, nil
}

func resolve(dir string) (*folder, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a folder: an embedding model's path is the folder of its export (model.onnx, tokenizer.json, config.json)", dir)
	}
	f := &folder{model: filepath.Join(dir, "model.onnx"), tokenizer: filepath.Join(dir, "tokenizer.json")}
	if f.files, err = onnxfile.Files(f.model); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.json")
	for _, p := range []string{f.tokenizer, config} {
		fh, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s has no %s: copy the one the model was exported with into the folder", dir, filepath.Base(p))
			}
			return nil, err
		}
		fh.Close()
		f.files = append(f.files, p)
	}
	data, err := os.ReadFile(config)
	if err != nil {
		return nil, err
	}
	var c struct {
		MaxPositions int `json:"max_position_embeddings"`
		Hidden       int `json:"hidden_size"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", config, err)
	}
	if c.MaxPositions < 0 || c.Hidden < 0 {
		return nil, fmt.Errorf("%s: max_position_embeddings %d and hidden_size %d must not be negative", config, c.MaxPositions, c.Hidden)
	}
	f.maxPositions, f.hidden = c.MaxPositions, c.Hidden
	return f, nil
}
