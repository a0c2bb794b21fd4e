package generate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseGenAIConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(sharedModel(t, "tiny-random-gpt2-fp32"), "genai_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseGenAIConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.file != "past.onnx" || c.pastPacked != "past_%d" || c.presentPacked != "present_%d" || c.contextLength != 512 ||
		c.vocabSize != 1000 || !slices.Equal(c.eos, []int{98}) || c.numKVHeads != 4 || c.headSize != 8 || c.numLayers != 5 ||
		c.inputIDs != "input_ids" || c.positionIDs != "position_ids" || c.logits != "logits" {
		t.Errorf("gpt2: %+v", c)
	}
	data, err = os.ReadFile(filepath.Join(sharedModel(t, "dummy-decoder-optimum"), "genai_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err = parseGenAIConfig(data); err != nil {
		t.Fatal(err)
	}
	if c.file != "decoder.onnx" || c.pastKey != "past_key_values.%d.key" || c.presentValue != "present.%d.value" || c.pastPacked != "" || c.contextLength != 128 {
		t.Errorf("dummy: %+v", c)
	}

	f := func(in, want string) {
		t.Helper()
		_, err := parseGenAIConfig([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", in, err, want)
		}
	}
	f(`{}`, "filename is missing")
	f(`{"model": {"decoder": {"filename": "../x.onnx"}}}`, "must name a file")
	f(`{"model": {"decoder": {"filename": "x.onnx", "inputs": {"past_names": "p_%d"}}}}`, "together")
	f(`{"model": {"decoder": {"filename": "x.onnx", "inputs": {"past_key_names": "p_%s"}}}}`, "%d exactly once")
	f(`{"model": {"vocab_size": -1, "decoder": {"filename": "x.onnx"}}}`, "out of range")
	f(`{"model": {"eos_token_id": "x", "decoder": {"filename": "x.onnx"}}}`, "token id")
}

func TestParseOptimumConfig(t *testing.T) {
	dir := tinyLlamaDir(t)
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	gen, _ := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	c, err := parseOptimumConfig(cfg, gen)
	if err != nil {
		t.Fatal(err)
	}
	if c.contextLength != 256 || !slices.Equal(c.eos, []int{307, 310}) || c.bos != 306 || c.numKVHeads != 2 || c.headSize != 8 || c.numLayers != 2 {
		t.Errorf("tiny-llama: %+v", c)
	}
	// GPT-2 style names, eos from config.json alone.
	c, err = parseOptimumConfig([]byte(`{"n_positions": 1024, "n_head": 12, "n_embd": 768, "n_layer": 12, "eos_token_id": 50256}`), nil)
	if err != nil || c.contextLength != 1024 || c.headSize != 64 || c.numKVHeads != 12 || !slices.Equal(c.eos, []int{50256}) {
		t.Errorf("gpt2 style: %+v %v", c, err)
	}
	if _, err := parseOptimumConfig([]byte(`[]`), nil); err == nil {
		t.Error("a list parsed as config.json")
	}
	if _, err := parseOptimumConfig([]byte(`{}`), []byte(`{"eos_token_id": [1, "x"]}`)); err == nil {
		t.Error("a bad generation_config.json parsed")
	}
}

func TestLayerPattern(t *testing.T) {
	re := layerPattern("past_key_values.%d.key")
	if m := re.FindStringSubmatch("past_key_values.12.key"); m == nil || m[1] != "12" {
		t.Errorf("got %v", m)
	}
	if re.MatchString("past_key_values.1.value") || re.MatchString("past_key_valuesX1.key") {
		t.Error("matched another name")
	}
}

// FuzzParseGenAIConfig checks the reader never panics and that what it
// accepts is usable.
func FuzzParseGenAIConfig(f *testing.F) {
	f.Add([]byte(`{"model": {"eos_token_id": [1, 2], "context_length": 64, "decoder": {"filename": "m.onnx", "inputs": {"past_names": "past_%d"}, "outputs": {"present_names": "present_%d"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseGenAIConfig(data)
		if err != nil {
			return
		}
		if c.file == "" || strings.ContainsAny(c.file, `/\`) && c.file != filepath.Base(c.file) {
			t.Errorf("accepted file name %q", c.file)
		}
		for _, p := range []string{c.pastKey, c.pastValue, c.presentKey, c.presentValue, c.pastPacked, c.presentPacked} {
			if p != "" {
				layerPattern(p)
			}
		}
	})
}

// FuzzParseOptimumConfig checks config.json and generation_config.json
// reading never panics.
func FuzzParseOptimumConfig(f *testing.F) {
	f.Add([]byte(`{"max_position_embeddings": 256, "num_attention_heads": 4, "hidden_size": 32, "eos_token_id": 2}`), []byte(`{"eos_token_id": [2, 3]}`))
	f.Fuzz(func(t *testing.T, config, generation []byte) {
		c, err := parseOptimumConfig(config, generation)
		if err != nil {
			return
		}
		for _, id := range c.eos {
			if id < 0 {
				t.Errorf("negative eos id %d", id)
			}
		}
	})
}
