package engine

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// TestHalf: every FP16 widens and narrows back to itself; float32 values
// narrow as modelgen's independent conversion narrows them; out of range
// is refused.
func TestHalf(t *testing.T) {
	for h := range 1 << 16 {
		f := HalfToFloat(uint16(h))
		got, ok := FloatToHalf(float64(f))
		if math.IsNaN(float64(f)) {
			if !ok || got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
				t.Fatalf("NaN %#04x narrows to %#04x", h, got)
			}
			continue
		}
		if !ok || got != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x, %v", h, f, got, ok)
		}
	}
	for i := range uint32(1 << 20) {
		f := math.Float32frombits(i*4099 + 0x33000000) // from 3e-8 up, past FP16's range
		want := modelgen.FloatToHalf(f)
		got, ok := FloatToHalf(float64(f))
		if want&0x7fff == 0x7c00 {
			if ok && !math.IsInf(float64(f), 0) {
				t.Fatalf("%g: accepted as %#04x beyond FP16's range", f, got)
			}
			continue
		}
		if !ok || got != want {
			t.Fatalf("%g: %#04x, %v; modelgen gives %#04x", f, got, ok, want)
		}
	}
}

// TestFP16TensorModel: the demo MLP exported with FP16 input and output
// (and weights) answers batched requests as its float32 twin does, within
// FP16's precision.
func TestFP16TensorModel(t *testing.T) {
	mlp := modelgen.DemoMLP()
	base := mlp.Model(modelgen.MLPOptions{})
	dir := t.TempDir()
	p32, p16 := filepath.Join(dir, "fp32.onnx"), filepath.Join(dir, "fp16.onnx")
	if err := modelgen.WriteFile(p32, modelgen.RoundFP16(base)); err != nil {
		t.Fatal(err)
	}
	if err := modelgen.WriteFile(p16, modelgen.FP16(base, func(string) bool { return true })); err != nil {
		t.Fatal(err)
	}
	opts := func(name, path string) TensorModelOptions {
		return TensorModelOptions{Name: name, Path: path, Batching: BatchOptions{Enabled: true, MaxBatchSize: 8, MaxQueueDelay: 5 * time.Millisecond, MaxQueueSize: 16}}
	}
	m32, err := LoadTensorModel(rt, opts("fp32", p32))
	if err != nil {
		t.Fatal(err)
	}
	defer m32.Close()
	m16, err := LoadTensorModel(rt, opts("fp16", p16))
	if err != nil {
		t.Fatal(err)
	}
	defer m16.Close()
	if in := m16.Inputs()[0]; in.DataType != FP16 {
		t.Fatalf("the fp16 model's input is %s", in.DataType)
	}
	var wg sync.WaitGroup
	for r := range 6 {
		wg.Go(func() {
			row := rowsInput(1, 4, r)
			half := make([]byte, 2*len(row))
			for i, v := range row {
				h, _ := FloatToHalf(float64(v))
				binary.LittleEndian.PutUint16(half[2*i:], h)
				row[i] = HalfToFloat(h) // both models see the same values
			}
			want, err := m32.Infer(context.Background(), []Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: f32Bytes(row)}}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			got, err := m16.Infer(context.Background(), []Tensor{{Name: "input", DataType: FP16, Shape: []int64{1, 4}, Data: half}}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			w := bytesF32(want[0].Data)
			if got[0].DataType != FP16 || len(got[0].Data) != 2*len(w) {
				t.Errorf("the fp16 output is %s of %d bytes, want FP16 of %d", got[0].DataType, len(got[0].Data), 2*len(w))
				return
			}
			for i := range w {
				g := HalfToFloat(binary.LittleEndian.Uint16(got[0].Data[2*i:]))
				if d := math.Abs(float64(g - w[i])); d > 2e-3*math.Max(1, math.Abs(float64(w[i]))) {
					t.Errorf("row %d output %d: fp16 %g, fp32 %g", r, i, g, w[i])
				}
			}
		})
	}
	wg.Wait()
}
