package quantize

import (
	"fmt"
	"slices"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// benchDecoder is the throughput benchmark's decoder, bench-llama: 8
// layers, hidden 768 (12 heads, 4 kv heads), vocab 32000 (99M parameters).
var benchDecoder = modelgen.BenchLlamaConfig

// decodeStream runs greedy decoding with a KV cache for streams
// sequences at once through one session.
type decodeStream struct {
	s       *ort.DynamicAdvancedSession
	c       modelgen.LlamaConfig
	streams int
	past    []ort.Value
	pastLen int
	next    []int64
}

func newDecodeStream(b *testing.B, path string, c modelgen.LlamaConfig, streams int) *decodeStream {
	inputs := []string{"input_ids", "attention_mask", "position_ids"}
	outputs := []string{"logits"}
	for i := range c.NumLayers {
		inputs = append(inputs, fmt.Sprintf("past_key_values.%d.key", i), fmt.Sprintf("past_key_values.%d.value", i))
		outputs = append(outputs, fmt.Sprintf("present.%d.key", i), fmt.Sprintf("present.%d.value", i))
	}
	return &decodeStream{s: session(b, path, inputs, outputs, benchThreads), c: c, streams: streams}
}

// reset drops the cache and prefills each stream with its own prompt of n
// tokens.
func (d *decodeStream) reset(b *testing.B, n int) {
	d.drop()
	for range 2 * d.c.NumLayers {
		v, err := ort.NewTensor(ort.NewShape(int64(d.streams), int64(d.c.NumKVHeads), 0, int64(d.c.HeadDim)), []float32{})
		if err != nil {
			b.Fatal(err)
		}
		d.past = append(d.past, v)
	}
	ids := make([]int64, d.streams*n)
	for i := range ids {
		ids[i] = int64((i*7919 + 13) % d.c.VocabSize)
	}
	d.step(b, ids, n)
}

func (d *decodeStream) drop() {
	for _, v := range d.past {
		v.Destroy()
	}
	d.past, d.pastLen = nil, 0
}

// step feeds n new tokens per stream and keeps the greedy next token.
func (d *decodeStream) step(b *testing.B, ids []int64, n int) {
	B := int64(d.streams)
	total := d.pastLen + n
	mask := slices.Repeat([]int64{1}, d.streams*total)
	pos := make([]int64, d.streams*n)
	for i := range pos {
		pos[i] = int64(d.pastLen + i%n)
	}
	var in []ort.Value
	for _, x := range []struct {
		v    []int64
		cols int
	}{{ids, n}, {mask, total}, {pos, n}} {
		t, err := ort.NewTensor(ort.NewShape(B, int64(x.cols)), x.v)
		if err != nil {
			b.Fatal(err)
		}
		defer t.Destroy()
		in = append(in, t)
	}
	in = append(in, d.past...)
	out := make([]ort.Value, 1+2*d.c.NumLayers)
	if err := d.s.Run(in, out); err != nil {
		b.Fatal(err)
	}
	logits := out[0].(*ort.Tensor[float32]).GetData()
	v := d.c.VocabSize
	d.next = d.next[:0]
	for s := range d.streams {
		row := logits[((s+1)*n-1)*v : ((s+1)*n)*v]
		d.next = append(d.next, int64(argmax(row)))
	}
	out[0].Destroy()
	d.drop()
	d.past, d.pastLen = out[1:], total
}

// BenchmarkDecoder decodes greedily with the KV cache on the
// benchmark-shaped decoder, FP32 and INT8 (default options) taking turns
// step by step, with 1 and 16 streams batched into each step; it reports
// tokens/s of each. A run is a prefill of 8 tokens (not timed) and 32
// decode steps.
func BenchmarkDecoder(b *testing.B) {
	dir := b.TempDir()
	fp32 := writeModel(b, dir, "fp32.onnx", modelgen.NewLlama(benchDecoder, 1, 1).Model("bench-llama"))
	start := time.Now()
	int8, sum := quantizeFile(b, fp32, dir, "int8.onnx", Options{PerChannel: true, MinElements: DefaultMinElements})
	b.Logf("quantized in %v: %d nodes rewritten, %d skipped; files %d -> %d bytes", time.Since(start), len(sum.Rewritten), len(sum.Skipped), sum.FileBytesBefore, sum.FileBytesAfter)
	const prompt, steps = 8, 32
	for _, streams := range []int{1, 16} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			models := []*decodeStream{newDecodeStream(b, fp32, benchDecoder, streams), newDecodeStream(b, int8, benchDecoder, streams)}
			defer func() {
				for _, m := range models {
					m.drop()
				}
			}()
			spent := make([]time.Duration, 2)
			for range b.N {
				for _, m := range models {
					m.reset(b, prompt)
				}
				for range steps {
					for i, m := range models {
						t0 := time.Now()
						m.step(b, slices.Clone(m.next), 1)
						spent[i] += time.Since(t0)
					}
				}
			}
			tokens := float64(b.N * steps * streams)
			b.ReportMetric(tokens/spent[0].Seconds(), "fp32_tokens/s")
			b.ReportMetric(tokens/spent[1].Seconds(), "int8_tokens/s")
			b.ReportMetric(spent[0].Seconds()/spent[1].Seconds(), "speedup")
		})
	}
}
