package hub

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Pick is a file to download and where it goes inside the model folder.
type Pick struct {
	File
	Local string // slash-separated path inside the model folder
}

// Selection is what a model folder needs from a listing.
type Selection struct {
	// Layout is "optimum" (config.json beside the tokenizer, the decoder in
	// onnx/model.onnx) or "genai" (an ONNX Runtime GenAI folder, copied
	// as it is).
	Layout  string
	Variant string // the variant picked: fp32, q4, ..., or the GenAI folder
	Files   []Pick
}

// The files of an Optimum layout besides the decoder: required ones fail
// the selection when missing.
var (
	optimumRequired = []string{"config.json", "tokenizer.json"}
	optimumOptional = []string{"generation_config.json", "tokenizer_config.json", "special_tokens_map.json"}
)

// decoderFile is where the picked decoder lands: engine/generate looks for
// onnx/model.onnx when the folder holds no model.onnx of its own. Its
// external data files keep their names beside it, since the ONNX file
// names them.
const decoderFile = "onnx/model.onnx"

// decoderBases are the decoder files an Optimum or Transformers.js export
// may hold, in order of preference, for a variant suffix ("" for fp32).
func decoderBases(suffix string) []string {
	if suffix == "" {
		return []string{"model.onnx", "decoder_model_merged.onnx"}
	}
	return []string{"model_" + suffix + ".onnx", "decoder_model_merged_" + suffix + ".onnx"}
}

// variantSuffixes maps a -variant to the file suffixes that carry it.
func variantSuffixes(v string) []string {
	switch v {
	case "", "fp32":
		return []string{""}
	case "int8":
		// Transformers.js names dynamic int8 quantization "quantized".
		return []string{"int8", "quantized"}
	}
	return []string{v}
}

// Select picks the files a model folder needs from l for variant (empty
// means fp32, or the only GenAI folder). An Optimum export's config and
// tokenizer files come from the repository's top and its decoder from
// onnx/ or the top, with the external data files named after it
// (model.onnx_data, model.onnx.data, model.onnx_data_1, ...). A GenAI
// export is a folder holding genai_config.json, taken whole.
func Select(l *Listing, variant string) (*Selection, error) {
	byPath := make(map[string]File, len(l.Files))
	for _, f := range l.Files {
		byPath[f.Path] = f
	}
	genai := genaiFolders(l)
	if variant != "" {
		for _, d := range genai {
			if d == variant || path.Base(d) == variant {
				return selectFolder(l, d), nil
			}
		}
	}
	decoders := optimumDecoders(l)
	if len(decoders) == 0 {
		switch {
		case len(genai) == 1 && variant == "":
			return selectFolder(l, genai[0]), nil
		case len(genai) > 1:
			return nil, fmt.Errorf("%s has %d ONNX Runtime GenAI folders; pick one with -variant: %s", l.Repo, len(genai), strings.Join(genai, ", "))
		case len(genai) == 1:
			return nil, fmt.Errorf("%s has no variant %q; its ONNX Runtime GenAI folder is %s (-variant %s)", l.Repo, variant, genai[0], path.Base(genai[0]))
		}
		return nil, fmt.Errorf("%s has no ONNX export (no onnx/model.onnx, no genai_config.json); its files are %s. Export it with Optimum (see README: Serving a real model), or pick a repository that publishes one",
			l.Repo, fileList(l, 30))
	}
	var dec File
	found := false
	for _, suffix := range variantSuffixes(variant) {
		for _, dir := range []string{"onnx/", ""} {
			for _, base := range decoderBases(suffix) {
				if f, ok := byPath[dir+base]; ok && !found {
					dec, found = f, true
				}
			}
		}
	}
	if !found {
		var have []string
		for _, d := range decoders {
			have = append(have, fmt.Sprintf("%s (%s)", d.variant, d.path))
		}
		for _, d := range genai {
			have = append(have, fmt.Sprintf("%s (ONNX Runtime GenAI folder)", path.Base(d)))
		}
		return nil, fmt.Errorf("%s has no %s variant; -variant takes one of: %s", l.Repo, orFP32(variant), strings.Join(have, ", "))
	}
	s := &Selection{Layout: "optimum", Variant: orFP32(variant)}
	for _, name := range optimumRequired {
		f, ok := byPath[name]
		if !ok {
			return nil, fmt.Errorf("%s has %s but no %s at its top, which the model folder needs; its files are %s", l.Repo, dec.Path, name, fileList(l, 30))
		}
		s.Files = append(s.Files, Pick{File: f, Local: name})
	}
	for _, name := range optimumOptional {
		if f, ok := byPath[name]; ok {
			s.Files = append(s.Files, Pick{File: f, Local: name})
		}
	}
	s.Files = append(s.Files, Pick{File: dec, Local: decoderFile})
	for _, f := range l.Files {
		if isExternalData(dec.Path, f.Path) {
			s.Files = append(s.Files, Pick{File: f, Local: path.Join(path.Dir(decoderFile), path.Base(f.Path))})
		}
	}
	return s, nil
}

// isExternalData reports whether p is an external data file of the ONNX
// file model, by the names exporters give them.
func isExternalData(model, p string) bool {
	for _, ext := range []string{"_data", ".data"} {
		if rest, ok := strings.CutPrefix(p, model+ext); ok && (rest == "" || strings.HasPrefix(rest, "_") && strings.Trim(rest[1:], "0123456789") == "" && len(rest) > 1) {
			return true
		}
	}
	return false
}

func orFP32(v string) string {
	if v == "" {
		return "fp32"
	}
	return v
}

type decoder struct{ variant, path string }

// optimumDecoders lists the decoders of an Optimum-style export with the
// variant each stands for.
func optimumDecoders(l *Listing) []decoder {
	var out []decoder
	for _, f := range l.Files {
		dir, base := path.Split(f.Path)
		if (dir != "" && dir != "onnx/") || !strings.HasSuffix(base, ".onnx") {
			continue
		}
		stem := strings.TrimSuffix(base, ".onnx")
		for _, prefix := range []string{"model", "decoder_model_merged"} {
			if stem == prefix {
				out = append(out, decoder{"fp32", f.Path})
			} else if v, ok := strings.CutPrefix(stem, prefix+"_"); ok && v != "" {
				if v == "quantized" {
					v = "int8"
				}
				out = append(out, decoder{v, f.Path})
			}
		}
	}
	return out
}

// genaiFolders lists the folders holding a genai_config.json, sorted.
func genaiFolders(l *Listing) []string {
	var out []string
	for _, f := range l.Files {
		if path.Base(f.Path) == "genai_config.json" {
			out = append(out, path.Dir(f.Path))
		}
	}
	sort.Strings(out)
	return out
}

// selectFolder takes the files directly inside dir, to the model folder's top.
func selectFolder(l *Listing, dir string) *Selection {
	s := &Selection{Layout: "genai", Variant: dir}
	for _, f := range l.Files {
		if path.Dir(f.Path) == dir {
			s.Files = append(s.Files, Pick{File: f, Local: path.Base(f.Path)})
		}
	}
	return s
}

// fileList names up to n of the listing's files, for an error message.
func fileList(l *Listing, n int) string {
	var names []string
	for _, f := range l.Files {
		names = append(names, f.Path)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	if len(names) > n {
		return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
	}
	return strings.Join(names, ", ")
}
