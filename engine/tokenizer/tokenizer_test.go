package tokenizer

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// sharedDir finds the shared folder: AIASSIST_SHARED, else "shared" beside
// the repository root (the folder holding go.mod).
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("AIASSIST_SHARED"); d != "" {
		return d
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// tokenizerPaths maps each golden file name to its tokenizer.json.
func tokenizerPaths(t testing.TB) map[string]string {
	shared := sharedDir(t)
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared folder %s is missing (set AIASSIST_SHARED): %v", shared, err)
	}
	return map[string]string{
		"gpt2": filepath.Join(shared, "models/tiny-random-gpt2-fp32/tokenizer.json"),
		"phi3": filepath.Join(shared, "models/tokenizers/phi3-tokenizer.json"),
		"bert": "testdata/bert-wordpiece.json",
	}
}

var loaded = map[string]*Tokenizer{}

func mustLoad(t testing.TB, name string) *Tokenizer {
	t.Helper()
	if tk, ok := loaded[name]; ok {
		return tk
	}
	tk, err := Load(tokenizerPaths(t)[name])
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
	for _, name := range []string{"gpt2", "phi3", "bert"} {
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
	for _, name := range []string{"gpt2", "phi3", "bert"} {
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
