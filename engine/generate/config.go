package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// modelConfig is what the decoder loop needs from a model folder's JSON
// files, whichever export layout wrote them. The tensor names are filled in
// later from the ONNX file's own input and output list.
type modelConfig struct {
	layout        string // "optimum" or "genai"
	file          string // the ONNX file name inside the folder
	contextLength int    // 0 if the files do not say
	vocabSize     int    // 0 if the files do not say
	numKVHeads    int    // 0 if unknown; the ONNX shapes usually say
	headSize      int
	numLayers     int
	eos           []int
	bos, pad      int // -1 if unset

	// Name patterns with one %d for the layer. A packed past holds key and
	// value in one tensor [2, batch, heads, seq, head_size].
	inputIDs, attentionMask, positionIDs string
	pastKey, pastValue, pastPacked       string
	presentKey, presentValue             string
	presentPacked                        string
	logits                               string
}

// idList accepts a JSON number or a list of numbers, as eos_token_id is
// written either way.
type idList []int

func (l *idList) UnmarshalJSON(b []byte) error {
	var one *int
	if err := json.Unmarshal(b, &one); err == nil {
		if one != nil {
			*l = idList{*one}
		}
		return nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a token id or a list of ids, got %.40s", b)
	}
	*l = many
	return nil
}

// loadConfig detects the layout of dir: genai_config.json means ONNX
// Runtime GenAI, config.json means Hugging Face Optimum. It returns the
// JSON files it read with the config.
func loadConfig(dir string) (*modelConfig, []string, error) {
	genai := filepath.Join(dir, "genai_config.json")
	if data, err := os.ReadFile(genai); err == nil {
		c, err := parseGenAIConfig(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", genai, err)
		}
		return c, []string{genai}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	config := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(config)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s has neither genai_config.json (ONNX Runtime GenAI export) nor config.json (Hugging Face Optimum export)", dir)
		}
		return nil, nil, err
	}
	files := []string{config}
	generation := filepath.Join(dir, "generation_config.json")
	gen, err := os.ReadFile(generation)
	switch {
	case err == nil:
		files = append(files, generation)
	case !errors.Is(err, os.ErrNotExist):
		return nil, nil, err
	}
	c, err := parseOptimumConfig(data, gen)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, sub := range []string{"", "onnx"} {
		for _, name := range optimumFiles {
			if _, err := os.Stat(filepath.Join(dir, sub, name)); err == nil && c.file == "" {
				c.file = filepath.Join(sub, name)
			}
		}
	}
	if c.file == "" {
		return nil, nil, fmt.Errorf("%s has config.json but no %s, neither beside it nor in onnx/", dir, strings.Join(optimumFiles, " or "))
	}
	return c, files, nil
}

// optimumFiles are the decoder files of an Optimum export, the first
// present taken: beside config.json, as optimum-cli writes them, else in
// onnx/, where exports published on a hub keep them (and aiassistd pull
// puts the variant it fetched).
var optimumFiles = []string{"model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx"}

func defaultNames(c *modelConfig) {
	c.inputIDs, c.attentionMask, c.positionIDs = "input_ids", "attention_mask", "position_ids"
	c.pastKey, c.pastValue = "past_key_values.%d.key", "past_key_values.%d.value"
	c.presentKey, c.presentValue = "present.%d.key", "present.%d.value"
	c.logits = "logits"
	c.bos, c.pad = -1, -1
}

// parseOptimumConfig reads a Hugging Face config.json and, if present,
// generation_config.json, whose eos_token_id list wins: chat models list
// their end-of-turn token there.
func parseOptimumConfig(config, generation []byte) (*modelConfig, error) {
	var f struct {
		MaxPositions int    `json:"max_position_embeddings"`
		NPositions   int    `json:"n_positions"`
		MaxSeqLen    int    `json:"max_sequence_length"`
		SeqLength    int    `json:"seq_length"`
		VocabSize    int    `json:"vocab_size"`
		NumHeads     int    `json:"num_attention_heads"`
		NHead        int    `json:"n_head"`
		NumKVHeads   int    `json:"num_key_value_heads"`
		HiddenSize   int    `json:"hidden_size"`
		NEmbd        int    `json:"n_embd"`
		HeadDim      int    `json:"head_dim"`
		NumLayers    int    `json:"num_hidden_layers"`
		NLayer       int    `json:"n_layer"`
		EOS          idList `json:"eos_token_id"`
		BOS          idList `json:"bos_token_id"`
		Pad          idList `json:"pad_token_id"`
	}
	if err := json.Unmarshal(config, &f); err != nil {
		return nil, fmt.Errorf("invalid config.json: %w", err)
	}
	c := &modelConfig{layout: "optimum"}
	defaultNames(c)
	c.contextLength = firstPositive(f.MaxPositions, f.NPositions, f.MaxSeqLen, f.SeqLength)
	c.vocabSize = f.VocabSize
	heads := firstPositive(f.NumHeads, f.NHead)
	c.numKVHeads = firstPositive(f.NumKVHeads, heads)
	if hidden := firstPositive(f.HiddenSize, f.NEmbd); f.HeadDim > 0 {
		c.headSize = f.HeadDim
	} else if heads > 0 && hidden > 0 {
		c.headSize = hidden / heads
	}
	c.numLayers = firstPositive(f.NumLayers, f.NLayer)
	c.eos = f.EOS
	c.bos = firstID(f.BOS)
	c.pad = firstID(f.Pad)
	if len(generation) > 0 {
		var g struct {
			EOS       idList `json:"eos_token_id"`
			BOS       idList `json:"bos_token_id"`
			Pad       idList `json:"pad_token_id"`
			MaxLength int    `json:"max_length"`
		}
		if err := json.Unmarshal(generation, &g); err != nil {
			return nil, fmt.Errorf("invalid generation_config.json: %w", err)
		}
		if len(g.EOS) > 0 {
			c.eos = g.EOS
		}
		if len(g.BOS) > 0 {
			c.bos = g.BOS[0]
		}
		if len(g.Pad) > 0 {
			c.pad = g.Pad[0]
		}
	}
	return c, c.check()
}

// parseGenAIConfig reads an ONNX Runtime GenAI genai_config.json. Names it
// leaves out take GenAI's defaults.
func parseGenAIConfig(data []byte) (*modelConfig, error) {
	type names struct {
		InputIDs       string `json:"input_ids"`
		AttentionMask  string `json:"attention_mask"`
		PositionIDs    string `json:"position_ids"`
		PastKeyNames   string `json:"past_key_names"`
		PastValueNames string `json:"past_value_names"`
		PastNames      string `json:"past_names"`
		Logits         string `json:"logits"`
		PresentKey     string `json:"present_key_names"`
		PresentValue   string `json:"present_value_names"`
		PresentNames   string `json:"present_names"`
	}
	var f struct {
		Model struct {
			Type          string `json:"type"`
			BOS           idList `json:"bos_token_id"`
			EOS           idList `json:"eos_token_id"`
			Pad           idList `json:"pad_token_id"`
			VocabSize     int    `json:"vocab_size"`
			ContextLength int    `json:"context_length"`
			Decoder       struct {
				Filename   string `json:"filename"`
				NumKVHeads int    `json:"num_key_value_heads"`
				NumHeads   int    `json:"num_attention_heads"`
				HeadSize   int    `json:"head_size"`
				NumLayers  int    `json:"num_hidden_layers"`
				Inputs     names  `json:"inputs"`
				Outputs    names  `json:"outputs"`
			} `json:"decoder"`
		} `json:"model"`
		Search struct {
			MaxLength int `json:"max_length"`
		} `json:"search"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid genai_config.json: %w", err)
	}
	m, d := f.Model, f.Model.Decoder
	if d.Filename == "" {
		return nil, errors.New("genai_config.json: model.decoder.filename is missing")
	}
	if d.Filename != filepath.Base(d.Filename) || d.Filename == "." || d.Filename == ".." {
		return nil, fmt.Errorf("genai_config.json: model.decoder.filename %q must name a file in the model folder", d.Filename)
	}
	c := &modelConfig{layout: "genai", file: d.Filename}
	defaultNames(c)
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.inputIDs, d.Inputs.InputIDs)
	set(&c.attentionMask, d.Inputs.AttentionMask)
	set(&c.positionIDs, d.Inputs.PositionIDs)
	set(&c.pastKey, d.Inputs.PastKeyNames)
	set(&c.pastValue, d.Inputs.PastValueNames)
	set(&c.logits, d.Outputs.Logits)
	set(&c.presentKey, d.Outputs.PresentKey)
	set(&c.presentValue, d.Outputs.PresentValue)
	c.pastPacked = d.Inputs.PastNames
	c.presentPacked = d.Outputs.PresentNames
	if (c.pastPacked == "") != (c.presentPacked == "") {
		return nil, errors.New("genai_config.json: past_names and present_names must be given together")
	}
	c.contextLength = firstPositive(m.ContextLength, f.Search.MaxLength)
	c.vocabSize = m.VocabSize
	c.numKVHeads = firstPositive(d.NumKVHeads, d.NumHeads)
	c.headSize = d.HeadSize
	c.numLayers = d.NumLayers
	c.eos = m.EOS
	c.bos = firstID(m.BOS)
	c.pad = firstID(m.Pad)
	return c, c.check()
}

// check rejects values no model has, so a corrupt file fails at load.
func (c *modelConfig) check() error {
	for _, v := range []struct {
		name string
		n    int
	}{{"context length", c.contextLength}, {"vocab_size", c.vocabSize}, {"key/value heads", c.numKVHeads}, {"head size", c.headSize}, {"layers", c.numLayers}} {
		if v.n < 0 || v.n > 1<<24 {
			return fmt.Errorf("%s %d is out of range", v.name, v.n)
		}
	}
	for _, p := range []string{c.pastKey, c.pastValue, c.presentKey, c.presentValue, c.pastPacked, c.presentPacked} {
		if p != "" && (strings.Count(p, "%d") != 1 || strings.Contains(strings.ReplaceAll(p, "%d", ""), "%")) {
			return fmt.Errorf("name pattern %q must contain %%d exactly once and no other %% verb", p)
		}
	}
	c.eos = slices.DeleteFunc(slices.Clone(c.eos), func(id int) bool { return id < 0 })
	return nil
}

func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

func firstID(l idList) int {
	if len(l) == 0 {
		return -1
	}
	return l[0]
}
