package generate

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

// linkFolder makes a folder whose entries are symbolic links to those of
// dir, except the names in skip, so a test can add, drop or replace files
// of a real model folder.
func linkFolder(t testing.TB, dir string, skip ...string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if slices.Contains(skip, e.Name()) {
			continue
		}
		src, err := filepath.Abs(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, filepath.Join(out, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// withTokenizer is dir with tiny-llama's tokenizer.json added: the shared
// dummy decoder comes without one, and tests feed it token ids anyway.
func withTokenizer(t testing.TB, dir string) string {
	t.Helper()
	out := linkFolder(t, dir)
	if err := os.Symlink(filepath.Join(tinyLlamaDir(t), "tokenizer.json"), filepath.Join(out, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	return out
}

func names(dir string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i], _ = filepath.Rel(dir, f)
	}
	return out
}

// TestModelFilesRealFolders lists the files of the real model folders,
// one of each layout, and checks Load agrees: each folder listed loads,
// and one refused fails to load with the same message.
func TestModelFilesRealFolders(t *testing.T) {
	t.Parallel()
	f := func(dir string, want ...string) {
		t.Helper()
		got, err := ModelFiles(dir)
		if err != nil || !slices.Equal(names(dir, got), want) {
			t.Errorf("ModelFiles(%s) = %v, %v; want %v", dir, names(dir, got), err, want)
		}
		load(t, Options{Dir: dir})
	}
	f(tinyLlamaDir(t), "config.json", "generation_config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json")
	// vocab.json is in the folder, but only tokenizer.json is read.
	f(sharedModel(t, "tiny-random-gpt2-fp32"), "genai_config.json", "past.onnx", "tokenizer.json", "tokenizer_config.json")
	dummy := sharedModel(t, "dummy-decoder-optimum")
	f(withTokenizer(t, dummy), "genai_config.json", "decoder.onnx", "tokenizer.json")
	refused(t, dummy, dummy+" has no tokenizer.json")
}

// refused checks that ModelFiles and Load both refuse dir, with an error
// that contains want.
func refused(t *testing.T, dir, want string) {
	t.Helper()
	if files, err := ModelFiles(dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ModelFiles(%s) = %v, %v; want an error with %q", dir, files, err, want)
	}
	if _, err := Load(ortRuntime(t), Options{Name: "x", Dir: dir}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load(%s) = %v, want an error with %q", dir, err, want)
	}
}

// TestModelFilesIgnoresOtherFiles adds what tools leave in a model folder
// (a lock file, a cache folder, a README, a second export Load does not
// pick): the list stays the same, so none of them can reload the model.
func TestModelFilesIgnoresOtherFiles(t *testing.T) {
	t.Parallel()
	dir := linkFolder(t, tinyLlamaDir(t))
	before, err := ModelFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".lock", "README.md", "model.onnx.lock", "decoder_model_merged.onnx", ".cache/huggingface/download/model.onnx"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	after, err := ModelFiles(dir)
	if err != nil || !slices.Equal(after, before) {
		t.Errorf("with unrelated files: %v, %v; before %v", names(dir, after), err, names(dir, before))
	}
}

// TestModelFilesMissing removes or breaks each file a layout needs: the
// error names it, and Load refuses the folder too.
func TestModelFilesMissing(t *testing.T) {
	t.Parallel()
	llama := tinyLlamaDir(t)
	gpt2 := sharedModel(t, "tiny-random-gpt2-fp32")

	dir := linkFolder(t, llama, "tokenizer.json")
	refused(t, dir, dir+" has no tokenizer.json")
	dir = linkFolder(t, llama, "model.onnx")
	refused(t, dir, dir+" has config.json but no model.onnx or decoder_model_merged.onnx")
	dir = linkFolder(t, llama, "config.json")
	refused(t, dir, "neither genai_config.json")
	dir = linkFolder(t, llama, "model.onnx")
	os.WriteFile(filepath.Join(dir, "model.onnx"), nil, 0o644)
	refused(t, dir, filepath.Join(dir, "model.onnx")+" is empty")
	dir = linkFolder(t, llama, "tokenizer.json")
	os.Mkdir(filepath.Join(dir, "tokenizer.json"), 0o755)
	refused(t, dir, filepath.Join(dir, "tokenizer.json")+" is not a regular file")
	refused(t, filepath.Join(llama, "model.onnx"), "is not a folder")
	refused(t, filepath.Join(t.TempDir(), "nowhere"), "no such file or directory")

	dir = linkFolder(t, gpt2, "genai_config.json")
	data, err := os.ReadFile(filepath.Join(gpt2, "genai_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "genai_config.json"), []byte(strings.Replace(string(data), `"past.onnx"`, `"gone.onnx"`, 1)), 0o644)
	refused(t, dir, `genai_config.json: model.decoder.filename "gone.onnx": open `+filepath.Join(dir, "gone.onnx")+": no such file or directory")
	dir = linkFolder(t, gpt2, "past.onnx")
	refused(t, dir, filepath.Join(dir, "past.onnx")+": no such file or directory")
}

// TestModelFilesExternalData exports tiny-llama with its weights in
// model.onnx.data, as Optimum does for large models: the data file is
// listed, the model loads from it and generates what the original does,
// and without it both ModelFiles and Load refuse the folder, naming it.
func TestModelFilesExternalData(t *testing.T) {
	t.Parallel()
	llama := tinyLlamaDir(t)
	raw, err := os.ReadFile(filepath.Join(llama, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	dir := linkFolder(t, llama, "model.onnx")
	if err := modelgen.WriteFileExternal(filepath.Join(dir, "model.onnx"), &mp, "model.onnx.data"); err != nil {
		t.Fatal(err)
	}
	got, err := ModelFiles(dir)
	want := []string{"config.json", "generation_config.json", "model.onnx", "model.onnx.data", "tokenizer.json", "tokenizer_config.json"}
	if err != nil || !slices.Equal(names(dir, got), want) {
		t.Fatalf("ModelFiles = %v, %v; want %v", names(dir, got), err, want)
	}
	prompt := []int{40, 71, 82, 82, 85, 283}
	a, _ := greedyIDs(t, load(t, Options{Dir: llama}), prompt, 12)
	b, _ := greedyIDs(t, load(t, Options{Dir: dir}), prompt, 12)
	if !slices.Equal(a, b) {
		t.Errorf("with external data %v, inline %v", b, a)
	}
	os.Remove(filepath.Join(dir, "model.onnx.data"))
	refused(t, dir, filepath.Join(dir, "model.onnx.data"))
}

// TestModelFilesWithoutRuntime lists a folder in a process that never
// initialises ONNX Runtime, as `aiassistd check` does.
func TestModelFilesWithoutRuntime(t *testing.T) {
	if os.Getenv("GENERATE_CHILD") == "1" {
		if _, err := ModelFiles(tinyLlamaDir(t)); err != nil {
			t.Fatal(err)
		}
		if ort.IsInitialized() {
			t.Fatal("ModelFiles initialised ONNX Runtime")
		}
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestModelFilesWithoutRuntime$")
	cmd.Env = append(os.Environ(), "GENERATE_CHILD=1", "ONNXRUNTIME_LIB=/nonexistent/libonnxruntime.so")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestModelFilesOnnxSubfolder lays tiny-llama out as exports published on
// a hub do, and as aiassistd pull writes them: the ONNX file and its
// external data in onnx/. The folder lists, loads and generates what the
// flat one does; a model.onnx beside config.json wins over onnx/.
func TestModelFilesOnnxSubfolder(t *testing.T) {
	t.Parallel()
	llama := tinyLlamaDir(t)
	raw, err := os.ReadFile(filepath.Join(llama, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	dir := linkFolder(t, llama, "model.onnx")
	if err := modelgen.WriteFileExternal(filepath.Join(dir, "onnx", "model.onnx"), &mp, "model.onnx_data"); err != nil {
		t.Fatal(err)
	}
	got, err := ModelFiles(dir)
	want := []string{"config.json", "generation_config.json", "onnx/model.onnx", "onnx/model.onnx_data", "tokenizer.json", "tokenizer_config.json"}
	if err != nil || !slices.Equal(names(dir, got), want) {
		t.Fatalf("ModelFiles = %v, %v; want %v", names(dir, got), err, want)
	}
	prompt := []int{40, 71, 82, 82, 85, 283}
	a, _ := greedyIDs(t, load(t, Options{Dir: llama}), prompt, 12)
	b, _ := greedyIDs(t, load(t, Options{Dir: dir}), prompt, 12)
	if !slices.Equal(a, b) {
		t.Errorf("from onnx/ %v, flat %v", b, a)
	}
	if err := os.Symlink(filepath.Join(llama, "model.onnx"), filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	if got, err := ModelFiles(dir); err != nil || names(dir, got)[2] != "model.onnx" {
		t.Errorf("with model.onnx beside config.json: %v, %v", names(dir, got), err)
	}
}
