package tokenizer

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/aiassist/aiassist/engine/internal/testpaths"
)

// tokenizerPaths maps each golden file name to its tokenizer.json.
func tokenizerPaths(t testing.TB) map[string]string {
	shared := testpaths.Shared(t)
	return map[string]string{
		"gpt2": filepath.Join(shared, "models/tiny-random-gpt2-fp32/tokenizer.json"),
		"phi3": filepath.Join(shared, "models/tokenizers/phi3-tokenizer.json"),
		"bert": "testdata/bert-wordpiece.json",
	}
}

// variants derive more configurations from the shared files, exactly as
// gen.mjs does, so that megabytes of near-copies need not be committed.
var variants = map[string]struct {
	base   string
	modify func(m map[string]any)
}{
	"llama3": {"gpt2", byteLevelSplit(llama3Pattern)},
	"qwen2":  {"gpt2", byteLevelSplit(qwen2Pattern)},
	"metaspace": {"phi3", func(m map[string]any) {
		m["normalizer"] = nil
		m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	}},
}

func byteLevelSplit(regex string) func(m map[string]any) {
	return func(m map[string]any) {
		m["normalizer"] = map[string]any{"type": "NFC"}
		m["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": regex}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		}}
		model := m["model"].(map[string]any)
		merges := model["merges"].([]any)
		for i, x := range merges {
			a, b, _ := strings.Cut(x.(string), " ")
			merges[i] = []any{a, b}
		}
		model["ignore_merges"] = true
	}
}

var (
	loadedMu sync.Mutex
	loaded   = map[string]*Tokenizer{}
)

var allNames = []string{"gpt2", "phi3", "bert", "llama3", "qwen2", "metaspace"}

func mustLoad(t testing.TB, name string) *Tokenizer {
	t.Helper()
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if tk, ok := loaded[name]; ok {
		return tk
	}
	path := tokenizerPaths(t)[name]
	v, isVariant := variants[name]
	if isVariant {
		path = tokenizerPaths(t)[v.base]
	}
	testpaths.Need(t, path)
	var tk *Tokenizer
	var err error
	if isVariant {
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		v.modify(m)
		if data, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		tk, err = Parse(data)
	} else {
		tk, err = Load(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	loaded[name] = tk
	return tk
}

type goldenCase struct {
	Text        string `json:"text"`
	Hex         string `json:"hex"`
	IDs         []int  `json:"ids"`
	IDsSpecial  []int  `json:"ids_special"`
	Decoded     string `json:"decoded"`
	DecodedSkip string `json:"decoded_skip"`
}

func (c goldenCase) input(t testing.TB) string {
	if c.Hex == "" {
		return c.Text
	}
	b, err := hex.DecodeString(c.Hex)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readGolden(t testing.TB, name string) []goldenCase {
	data, err := os.ReadFile(filepath.Join("testdata/golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []goldenCase
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestGolden compares with ids and text from the JavaScript reference
// (testdata/golden/gen.mjs).
func TestGolden(t *testing.T) {
	for _, name := range allNames {
		t.Run(name, func(t *testing.T) {
			tk := mustLoad(t, name)
			for i, c := range readGolden(t, name) {
				in := c.input(t)
				if got := tk.Encode(in, false); !slices.Equal(got, c.IDs) {
					t.Errorf("case %d %q: Encode(false)\n got %v\nwant %v", i, in, got, c.IDs)
				}
				if got := tk.Encode(in, true); !slices.Equal(got, c.IDsSpecial) {
					t.Errorf("case %d %q: Encode(true)\n got %v\nwant %v", i, in, got, c.IDsSpecial)
				}
				if got := tk.Decode(c.IDsSpecial, false); got != c.Decoded {
					t.Errorf("case %d: Decode(false)\n got %q\nwant %q", i, got, c.Decoded)
				}
				if got := tk.Decode(c.IDsSpecial, true); got != c.DecodedSkip {
					t.Errorf("case %d: Decode(true)\n got %q\nwant %q", i, got, c.DecodedSkip)
				}
			}
		})
	}
}

// TestStreamDecoder checks that streaming id by id gives exactly Decode's
// text, in chunks that are each valid UTF-8.
func TestStreamDecoder(t *testing.T) {
	for _, name := range allNames {
		tk := mustLoad(t, name)
		for i, c := range readGolden(t, name) {
			for _, skip := range []bool{false, true} {
				d := tk.NewStreamDecoder(skip)
				var b strings.Builder
				for _, id := range c.IDsSpecial {
					chunk := d.Add(id)
					if !utf8.ValidString(chunk) {
						t.Errorf("%s case %d: chunk %q is not valid UTF-8", name, i, chunk)
					}
					b.WriteString(chunk)
				}
				b.WriteString(d.Flush())
				if want := tk.Decode(c.IDsSpecial, skip); b.String() != want {
					t.Errorf("%s case %d skip=%v: stream\n got %q\nwant %q", name, i, skip, b.String(), want)
				}
			}
		}
	}
}
