package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/quantize"
)

func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "model.onnx")
	if err := modelgen.WriteFile(in, modelgen.NewMLP([]int{64, 128, 128, 4}, 1).Model(modelgen.MLPOptions{})); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "model.int8.onnx")
	code, stdout, stderr := runCmd("quantize", "-in", in, "-out", out, "-exclude", "layer1.matmul/MatMul", "-min-elements", "1000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"rewritten 1 nodes to INT8 (MatMul and Gemm as DynamicQuantizeMatMul, Attention as QAttention; symmetric int8 weights in [-63, 63], one scale per output channel)",
		"layer0.matmul/MatMul (MatMul): weight layer0.weight [64 128]",
		"skipped 2 nodes, kept FP32:",
		"layer1.matmul/MatMul (MatMul): listed in exclude",
		`layer2.matmul/MatMul (MatMul): weight "layer2.weight" has 512 elements, fewer than min_elements 1000`,
		"weights: 32.0 KB (32768 bytes) FP32 -> 8.5 KB (8704 bytes) INT8",
		"model: ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := quantize.Load(out); err != nil {
		t.Fatalf("the output does not load: %v", err)
	}

	f := func(want string, code int, args ...string) {
		t.Helper()
		got, _, stderr := runCmd(append([]string{"quantize"}, args...)...)
		if got != code || !strings.Contains(stderr, want) {
			t.Errorf("quantize %v: exit %d, stderr %q; want exit %d and %q", args, got, stderr, code, want)
		}
	}
	f("-in and -out are required", 2, "-in", in)
	f("-min-elements -1 is negative", 2, "-in", in, "-out", out, "-min-elements", "-1")
	f("the output "+in+" is the input", 1, "-in", in, "-out", in)
	f("no such file", 1, "-in", filepath.Join(dir, "missing.onnx"), "-out", out)
	bad := filepath.Join(dir, "bad.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	f("is not a valid ONNX model", 1, "-in", bad, "-out", out)
}
