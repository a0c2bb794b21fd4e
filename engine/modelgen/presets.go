package modelgen

import (
	"slices"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// The example models. Their sizes and seeds are part of the contract with
// the committed files under examples/models: changing one changes those bytes.
var (
	DemoMLPSizes = []int{4, 16, 3}
	BigMLPSizes  = []int{1024, 4096, 4096, 1024}
)

const (
	DemoMLPSeed = 1
	BigMLPSeed  = 2
)

// DemoMLP returns the small demo MLP, whose Forward gives the expected output
// of examples/models/demo-mlp/model.onnx.
func DemoMLP() *MLP { return NewMLP(DemoMLPSizes, DemoMLPSeed) }

// BigMLP returns the compute-bound benchmark MLP (about 25M parameters,
// 100 MB as ONNX).
func BigMLP() *MLP { return NewMLP(BigMLPSizes, BigMLPSeed) }

// Preset is a named example model; Name is also its directory under the
// models directory, which holds it as model.onnx.
type Preset struct {
	Name string
	// Committed reports whether the model lives in the repository under
	// examples/models; big models are generated at benchmark time instead.
	Committed bool
	Build     func() *onnxpb.ModelProto
	// Files returns further files to write beside model.onnx, such as a
	// tokenizer, by file name; nil means none.
	Files func() map[string][]byte
}

var presets = []Preset{
	{Name: "demo-mlp", Committed: true, Build: func() *onnxpb.ModelProto { return DemoMLP().Model(MLPOptions{Name: "demo-mlp"}) }},
	{Name: "types", Committed: true, Build: TypesModel},
	{Name: "tiny-llama", Committed: true,
		Build: func() *onnxpb.ModelProto { return TinyLlama().Model() },
		Files: func() map[string][]byte { return TinyLlama().Files() }},
	{Name: "tiny-llama-int4", Build: func() *onnxpb.ModelProto { return TinyLlamaInt4().Model("tiny-llama-int4") }, Files: func() map[string][]byte { return TinyLlama().Files() }},
	{Name: "tiny-bert", Committed: true, Build: func() *onnxpb.ModelProto { return TinyBert().Model() }, Files: func() map[string][]byte { return TinyBert().Files() }},
	{Name: "big-mlp", Committed: false, Build: func() *onnxpb.ModelProto { return BigMLP().Model(MLPOptions{Name: "big-mlp"}) }},
	{Name: "bench-llama", Committed: false, Build: func() *onnxpb.ModelProto { return BenchLlama().Llama.Model("bench-llama") }, Files: benchLlamaFiles},
}

// Presets returns the example models in a fixed order.
func Presets() []Preset { return slices.Clone(presets) }
