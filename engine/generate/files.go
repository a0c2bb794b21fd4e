package generate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aiassist/aiassist/engine/internal/onnxfile"
)

// folder is a model folder resolved into the files Load reads: Load and
// ModelFiles both start here, so the list cannot miss a file Load opens.
type folder struct {
	cfg             *modelConfig
	model           string   // the ONNX file
	tokenizer       string   // tokenizer.json
	tokenizerConfig string   // tokenizer_config.json, or "" if there is none
	files           []string // the config files, the ONNX file and its external data, the tokenizer files
}

// ModelFiles returns the files Load reads from the causal-lm folder dir,
// and nothing else: for an Optimum export config.json,
// generation_config.json if present, model.onnx (or
// decoder_model_merged.onnx) beside config.json or else in onnx/, and the
// external data files it names (model.onnx.data); for an ONNX Runtime GenAI export genai_config.json,
// the ONNX file it names and that file's external data; for both
// tokenizer.json and tokenizer_config.json if present. A required file that
// is missing, unreadable or empty is an error naming it. It reads the JSON
// configs and the ONNX file's structure but needs no ONNX Runtime, so it
// is what a config check runs, and its list is what identifies the model.
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
		return nil, fmt.Errorf("%s is not a folder: a causal-lm model's path is the folder of its export", dir)
	}
	cfg, files, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	f := &folder{cfg: cfg, model: filepath.Join(dir, cfg.file)}
	onnx, err := onnxfile.Files(f.model)
	if err != nil {
		if cfg.layout == "genai" {
			return nil, fmt.Errorf("%s: model.decoder.filename %q: %w", filepath.Join(dir, "genai_config.json"), cfg.file, err)
		}
		return nil, err
	}
	files = append(files, onnx...)
	f.tokenizer = filepath.Join(dir, "tokenizer.json")
	if err := readable(f.tokenizer); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s has no tokenizer.json: copy the one the model was exported with into the folder", dir)
		}
		return nil, err
	}
	files = append(files, f.tokenizer)
	tc := filepath.Join(dir, "tokenizer_config.json")
	switch err := readable(tc); {
	case err == nil:
		f.tokenizerConfig = tc
		files = append(files, tc)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	f.files = files
	return f, nil
}

func readable(path string) error {
	f, err := onnxfile.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
