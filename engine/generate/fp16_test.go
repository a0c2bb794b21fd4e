package generate

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

// fp16Tolerance bounds |logit(fp16) - logit(fp32)| for the twins: the
// float16 logits alone are off by half a unit in the last place, 1/128
// for logits of magnitude 16 to 32, and the float16 cache adds its own
// rounding to every attention read.
const fp16Tolerance = 0.02

// writeTwins writes tiny-llama's float32 twin and its fp16 export (float16
// weights, cache and logits) into two folders with its tokenizer and config.
func writeTwins(t *testing.T) (fp32Dir, fp16Dir string) {
	t.Helper()
	tl := modelgen.TinyLlama()
	base := tl.Model()
	dir := t.TempDir()
	for name, model := range map[string]*onnxpb.ModelProto{"fp32": modelgen.RoundFP16(base), "fp16": modelgen.FP16(base, modelgen.HalfIO)} {
		p := modelgen.Preset{Name: name, Build: func() *onnxpb.ModelProto { return model }, Files: tl.Files}
		if _, err := p.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "fp32"), filepath.Join(dir, "fp16")
}

// TestFP16Twin: the fp16 decoder generates the same greedy tokens as its
// float32 twin on a fixed prompt set, alone and in one batch, and its
// prompt logits are within fp16Tolerance of the twin's.
func TestFP16Twin(t *testing.T) {
	t.Parallel()
	fp32Dir, fp16Dir := writeTwins(t)
	m32 := load(t, Options{Name: "fp32", Dir: fp32Dir})
	m16 := load(t, Options{Name: "fp16", Dir: fp16Dir})
	if m16.io.cacheType == m32.io.cacheType || m16.io.logitsType == m32.io.logitsType {
		t.Fatalf("the fp16 twin binds cache %v and logits %v, as the fp32 one does", m16.io.cacheType, m16.io.logitsType)
	}
	prompts := [][]int{{40, 71, 82, 82, 85, 283}, {306, 308, 71}, {5}, {72, 258, 1, 300}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}}
	worst := 0.0
	for _, p := range prompts {
		a, err := m32.lanes[0].runModel([][]int{p}, [][]int{positions(0, len(p))}, nil, 0, []int{0}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m16.lanes[0].runModel([][]int{p}, [][]int{positions(0, len(p))}, nil, 0, []int{0}, nil)
		if err != nil {
			t.Fatal(err)
		}
		destroyAll(a.present)
		destroyAll(b.present)
		for i := range a.logits[0] {
			worst = max(worst, math.Abs(float64(a.logits[0][i]-b.logits[0][i])))
		}
	}
	t.Logf("largest logit difference over the prompts: %.4g", worst)
	if worst > fp16Tolerance || worst == 0 {
		t.Errorf("fp16 logits differ from fp32 by up to %g; want (0, %g]", worst, fp16Tolerance)
	}
	want := make([][]int, len(prompts))
	for i, p := range prompts {
		want[i], _ = greedyIDs(t, m32, p, 20)
		if got, _ := greedyIDs(t, m16, p, 20); !slices.Equal(got, want[i]) {
			t.Errorf("prompt %v: fp16 %v, fp32 %v", p, got, want[i])
		}
	}
	// All at once: the float16 cache is repacked as sequences join and
	// leave (each stops at a different length).
	got := make([][]int, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Go(func() {
			_, err := m16.GenerateIDs(context.Background(), p, Request{MaxTokens: 12 + 2*i}, func(id int) error {
				got[i] = append(got[i], id)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range prompts {
		if !slices.Equal(got[i], want[i][:12+2*i]) {
			t.Errorf("prompt %v in a batch: fp16 %v, fp32 alone %v", prompts[i], got[i], want[i][:12+2*i])
		}
	}
}

// TestHalfToFloat: the lane widens every float16 as modelgen does.
func TestHalfToFloat(t *testing.T) {
	src := make([]byte, 2<<16)
	for h := range 1 << 16 {
		src[2*h], src[2*h+1] = byte(h), byte(h>>8)
	}
	dst := make([]float32, 1<<16)
	halfToFloat(dst, src)
	for h := range 1 << 16 {
		want := modelgen.HalfToFloat(uint16(h))
		if math.Float32bits(dst[h]) != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(dst[h]))) {
			t.Fatalf("half %#04x: %g, want %g", h, dst[h], want)
		}
	}
}
