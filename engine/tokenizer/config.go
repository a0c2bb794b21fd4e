package tokenizer

import "encoding/json"

// file mirrors the parts of a Hugging Face tokenizer.json that affect ids.
// Encode never truncates or pads; truncation and padding are parsed for
// callers that do (Tokenizer.Truncation, Tokenizer.Padding).
type file struct {
	Truncation    *truncationConfig `json:"truncation"`
	Padding       *paddingConfig    `json:"padding"`
	AddedTokens   []addedToken      `json:"added_tokens"`
	Normalizer    *component        `json:"normalizer"`
	PreTokenizer  *component        `json:"pre_tokenizer"`
	Model         modelConfig       `json:"model"`
	PostProcessor *component        `json:"post_processor"`
	Decoder       *component        `json:"decoder"`
}

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelConfig struct {
	Type                    string            `json:"type"`
	Vocab                   map[string]int    `json:"-"`
	RawVocab                json.RawMessage   `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	UnkToken                *string           `json:"unk_token"`
	Dropout                 *float64          `json:"dropout"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	FuseUnk                 bool              `json:"fuse_unk"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	MaxInputCharsPerWord    *int              `json:"max_input_chars_per_word"`
}

// component is any normalizer, pre-tokenizer, post-processor or decoder:
// one flat struct keeps the tables in build.go short, and each builder reads
// only the fields its type defines.
type component struct {
	Type string `json:"type"`

	Normalizers   []*component `json:"normalizers"`
	Pretokenizers []*component `json:"pretokenizers"`
	Processors    []*component `json:"processors"`
	Decoders      []*component `json:"decoders"`

	Pattern  *pattern `json:"pattern"`
	Content  *string  `json:"content"`
	Behavior string   `json:"behavior"`
	Invert   bool     `json:"invert"`

	Prepend            string `json:"prepend"`
	CleanText          *bool  `json:"clean_text"`
	HandleChineseChars *bool  `json:"handle_chinese_chars"`
	StripAccents       *bool  `json:"strip_accents"`
	Lowercase          *bool  `json:"lowercase"`
	StripLeft          bool   `json:"strip_left"`
	StripRight         bool   `json:"strip_right"`

	AddPrefixSpace   *bool   `json:"add_prefix_space"`
	UseRegex         *bool   `json:"use_regex"`
	Replacement      *string `json:"replacement"`
	PrependScheme    *string `json:"prepend_scheme"`
	Split            *bool   `json:"split"`
	IndividualDigits bool    `json:"individual_digits"`

	Single        []templatePiece            `json:"single"`
	SpecialTokens map[string]templateSpecial `json:"special_tokens"`
	Sep           []json.RawMessage          `json:"sep"`
	Cls           []json.RawMessage          `json:"cls"`

	Prefix  *string `json:"prefix"`
	Cleanup *bool   `json:"cleanup"`
	Start   int     `json:"start"`
	Stop    int     `json:"stop"`

	PrecompiledCharsmap *string `json:"precompiled_charsmap"`
}

type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type templateSpecial struct {
	IDs []int `json:"ids"`
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func strOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}
