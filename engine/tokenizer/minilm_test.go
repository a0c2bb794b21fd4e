package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/engine/internal/testpaths"
)

type miniLMCase struct {
	goldenCase
	AttentionMask []int `json:"attention_mask"`
	IDsRaw        []int `json:"ids_raw"`
	IDsOverride   []int `json:"ids_override"`
	MaskOverride  []int `json:"mask_override"`
	IDsMultiple8  []int `json:"ids_multiple8"`
}

// encodeLimited encodes text as the reference does with truncation tr and
// padding p (either nil for none): truncated to leave room for the special
// tokens, which are then added, then padded.
func encodeLimited(tk *Tokenizer, text string, tr *Truncation, p *Padding) (ids, mask []int) {
	ids = tk.Encode(text, false)
	if tr != nil {
		ids = Truncate(ids, tr.MaxLength-tk.SpecialTokenCount(), tr.Left)
	}
	ids = tk.AddSpecialTokens(ids)
	if p == nil {
		mask = make([]int, len(ids))
		for i := range mask {
			mask[i] = 1
		}
		return ids, mask
	}
	return p.Pad(ids, p.Length(len(ids)))
}

// TestGoldenMiniLM compares ids from the real all-MiniLM-L6-v2
// tokenizer.json, truncated and padded as the file says and as overridden,
// with the Rust reference's (testdata/golden/gen.mjs, minilm.json).
func TestGoldenMiniLM(t *testing.T) {
	tk, err := Load(testpaths.SharedPath(t, "models/tokenizers/minilm-l6-v2-tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tr, pad := tk.Truncation(), tk.Padding()
	if tr == nil || tr.MaxLength != 128 || tr.Left || pad == nil || pad.Fixed != 128 || pad.Left || pad.PadID != 0 || pad.PadToken != "[PAD]" {
		t.Fatalf("file settings read as truncation %+v, padding %+v", tr, pad)
	}
	data, err := os.ReadFile("testdata/golden/minilm.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []miniLMCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 50 {
		t.Fatalf("%d cases; the corpus must have at least 50", len(cases))
	}
	truncated := 0
	override := &Truncation{MaxLength: 20, Left: true}
	overridePad := &Padding{Fixed: 24, Left: true, PadToken: "[PAD]"}
	for i, c := range cases {
		in := c.input(t)
		ids, mask := encodeLimited(tk, in, tr, pad)
		if !slices.Equal(ids, c.IDs) || !slices.Equal(mask, c.AttentionMask) {
			t.Errorf("case %d %.40q: file settings\n got %v %v\nwant %v %v", i, in, ids, mask, c.IDs, c.AttentionMask)
		}
		if got, _ := encodeLimited(tk, in, nil, nil); !slices.Equal(got, c.IDsRaw) {
			t.Errorf("case %d %.40q: no truncation or padding\n got %v\nwant %v", i, in, got, c.IDsRaw)
		}
		ids, mask = encodeLimited(tk, in, override, overridePad)
		if !slices.Equal(ids, c.IDsOverride) || !slices.Equal(mask, c.MaskOverride) {
			t.Errorf("case %d %.40q: override\n got %v %v\nwant %v %v", i, in, ids, mask, c.IDsOverride, c.MaskOverride)
		}
		if got, _ := encodeLimited(tk, in, nil, &Padding{MultipleOf: 8}); !slices.Equal(got, c.IDsMultiple8) {
			t.Errorf("case %d %.40q: multiple of 8\n got %v\nwant %v", i, in, got, c.IDsMultiple8)
		}
		if len(c.IDsRaw) > 128 {
			truncated++
		}
	}
	if truncated < 3 {
		t.Errorf("only %d cases are longer than the truncation; the corpus must exercise it", truncated)
	}
}

// TestLimitsParse checks the truncation and padding sections a
// tokenizer.json may hold, and that bad ones fail to load.
func TestLimitsParse(t *testing.T) {
	base := `{"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":1}}`
	f := func(extra, wantErr string) *Tokenizer {
		t.Helper()
		tk, err := Parse([]byte(base + extra + "}"))
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("%s: err %v, want %q", extra, err, wantErr)
		}
		return tk
	}
	tk := f(`,"truncation":null,"padding":null`, "")
	if tk.Truncation() != nil || tk.Padding() != nil {
		t.Fatal("null sections gave settings")
	}
	tk = f(`,"padding":{"strategy":"BatchLongest","direction":"Left","pad_to_multiple_of":8,"pad_id":0,"pad_type_id":0,"pad_token":"[UNK]"}`, "")
	if p := tk.Padding(); p.Fixed != 0 || !p.Left || p.MultipleOf != 8 || p.Length(9) != 16 || p.Length(8) != 8 {
		t.Fatalf("padding %+v", p)
	}
	f(`,"truncation":{"max_length":0}`, "max_length 0")
	f(`,"truncation":{"max_length":8,"direction":"Up"}`, `direction "Up"`)
	f(`,"padding":{"strategy":{"Fixed":-1}}`, "Fixed -1")
	f(`,"padding":{"strategy":"Longest"}`, "strategy")
	f(`,"padding":{"strategy":{"Fixed":99999999}}`, "Fixed 99999999")
}

// FuzzParseLimits feeds random truncation and padding sections to Parse
// (seeds also in testdata/fuzz/FuzzParseLimits): it must never panic, and
// settings it accepts must pad and truncate within their bounds.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{
		`"truncation":{"direction":"Right","max_length":128,"strategy":"LongestFirst","stride":0},"padding":{"strategy":{"Fixed":128},"direction":"Right","pad_to_multiple_of":null,"pad_id":0,"pad_type_id":0,"pad_token":"[PAD]"}`,
		`"truncation":null,"padding":{"strategy":"BatchLongest","pad_to_multiple_of":8}`,
		`"padding":{"strategy":{"Fixed":0}}`,
		`"truncation":{"max_length":-1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := Parse([]byte(`{"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":1}},` + s + `}`))
		if err != nil {
			return
		}
		if tr := tk.Truncation(); tr != nil {
			if tr.MaxLength < 1 || tr.MaxLength > maxLength {
				t.Fatalf("accepted max_length %d", tr.MaxLength)
			}
			if got := Truncate([]int{1, 1, 1}, tr.MaxLength, tr.Left); len(got) > tr.MaxLength {
				t.Fatalf("truncated to %d > %d", len(got), tr.MaxLength)
			}
		}
		if p := tk.Padding(); p != nil {
			n := p.Length(3)
			if n < 3 || n > 2*maxLength || p.PadID < 0 {
				t.Fatalf("padding %+v pads 3 ids to %d", p, n)
			}
			ids, mask := p.Pad([]int{1, 1, 1}, n)
			if len(ids) != n || len(mask) != n {
				t.Fatalf("padded to %d, %d; want %d", len(ids), len(mask), n)
			}
		}
	})
}
