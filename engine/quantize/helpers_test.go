package quantize

import (
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// runTwo runs a session of two FP32 inputs, [rows][64] and [64][64], and
// one FP32 output of [rows][64].
func runTwo(t testing.TB, s *ort.DynamicAdvancedSession, x, w []float32) []float32 {
	t.Helper()
	rows := int64(len(x) / 64)
	a, err := ort.NewTensor(ort.NewShape(rows, 64), x)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Destroy()
	b, err := ort.NewTensor(ort.NewShape(64, 64), w)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(rows, 64))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	if err := s.Run([]ort.Value{a, b}, []ort.Value{out}); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out.GetData()...)
}

// gpt2Logits runs the GenAI GPT-2 test model at path on a fixed prompt:
// a prefill of 6 tokens with an empty past, then one decode step with the
// past it returned. It returns the logits of both runs.
func gpt2Logits(t testing.TB, path string) []float32 {
	t.Helper()
	const layers, heads, headSize, vocab = 5, 4, 8, 1000
	inputs := []string{"input_ids", "position_ids", "attention_mask"}
	outputs := []string{"logits"}
	for i := range layers {
		inputs = append(inputs, fmt.Sprintf("past_%d", i))
		outputs = append(outputs, fmt.Sprintf("present_%d", i))
	}
	s := session(t, path, inputs, outputs, 1)
	i32 := func(v ...int32) *ort.Tensor[int32] {
		x, err := ort.NewTensor(ort.NewShape(1, int64(len(v))), v)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Destroy() })
		return x
	}
	step := func(ids, pos, mask []int32, past []ort.Value) ([]float32, []ort.Value) {
		in := []ort.Value{i32(ids...), i32(pos...), i32(mask...)}
		in = append(in, past...)
		out := make([]ort.Value, len(outputs))
		if err := s.Run(in, out); err != nil {
			t.Fatal(err)
		}
		for _, v := range out {
			t.Cleanup(func() { v.Destroy() })
		}
		logits := out[0].(*ort.Tensor[float32]).GetData()
		if len(logits) != len(ids)*vocab {
			t.Fatalf("%d logits for %d tokens", len(logits), len(ids))
		}
		return append([]float32(nil), logits...), out[1:]
	}
	var empty []ort.Value
	for range layers {
		v, err := ort.NewTensor(ort.NewShape(2, 1, heads, 0, headSize), []float32{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Destroy() })
		empty = append(empty, v)
	}
	first, past := step([]int32{5, 17, 230, 999, 42, 7}, []int32{0, 1, 2, 3, 4, 5}, []int32{1, 1, 1, 1, 1, 1}, empty)
	second, _ := step([]int32{311}, []int32{6}, []int32{1, 1, 1, 1, 1, 1, 1}, past)
	return append(first, second...)
}
