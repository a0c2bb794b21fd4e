package modelgen

import (
	"encoding/json"
	"testing"
)

// TestBenchLlamaFiles: bench-llama's config.json gives its own shape, not
// tiny-llama's whose tokenizer it borrows.
func TestBenchLlamaFiles(t *testing.T) {
	var c struct {
		Vocab  int `json:"vocab_size"`
		Hidden int `json:"hidden_size"`
		Layers int `json:"num_hidden_layers"`
		KV     int `json:"num_key_value_heads"`
	}
	if err := json.Unmarshal(benchLlamaFiles()["config.json"], &c); err != nil {
		t.Fatal(err)
	}
	if c.Vocab != 32000 || c.Hidden != 768 || c.Layers != 8 || c.KV != 4 {
		t.Fatalf("config.json gives %+v", c)
	}
}
