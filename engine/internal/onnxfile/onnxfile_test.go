package onnxfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aiassist/aiassist/engine/internal/testpaths"
	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

func write(t *testing.T, path string, m *onnxpb.ModelProto) string {
	t.Helper()
	if err := modelgen.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

func externalTensor(name, location string) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{
		Name:         proto.String(name),
		Dims:         []int64{2},
		DataType:     proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("offset"), Value: proto.String("0")},
			{Key: proto.String("location"), Value: proto.String(location)},
		},
	}
}

// nested is a model whose external tensors hide in every place onnx.proto
// allows: an initializer, a Constant's value, a sparse initializer, a
// subgraph of an If node and a function's node.
func nested(locations ...string) *onnxpb.ModelProto {
	sub := &onnxpb.GraphProto{Name: proto.String("then"), Initializer: []*onnxpb.TensorProto{externalTensor("sub_w", locations[3])}}
	return &onnxpb.ModelProto{
		IrVersion: proto.Int64(8),
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("g"),
			Initializer: []*onnxpb.TensorProto{externalTensor("w", locations[0]), modelgen.Tensor("inline", []int64{2}, []float32{1, 2})},
			Node: []*onnxpb.NodeProto{
				{OpType: proto.String("Constant"), Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), T: externalTensor("c", locations[1])}}},
				{OpType: proto.String("If"), Attribute: []*onnxpb.AttributeProto{{Name: proto.String("then_branch"), G: sub}}},
			},
			SparseInitializer: []*onnxpb.SparseTensorProto{{Values: externalTensor("s", locations[2]), Indices: modelgen.Tensor("i", []int64{1}, []int64{0})}},
		},
		Functions: []*onnxpb.FunctionProto{{Name: proto.String("f"), Node: []*onnxpb.NodeProto{
			{OpType: proto.String("Constant"), Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), T: externalTensor("fc", locations[4])}}},
		}}},
	}
}

func TestInlineModelIsOneFile(t *testing.T) {
	path := write(t, filepath.Join(t.TempDir(), "model.onnx"), modelgen.DemoMLP().Model(modelgen.MLPOptions{}))
	got, err := Files(path)
	if err != nil || !slices.Equal(got, []string{path}) {
		t.Fatalf("Files = %v, %v; want just the model", got, err)
	}
	// The real models of the repository and the shared folder.
	for _, p := range []string{
		filepath.Join(testpaths.RepoRoot(t), "examples/models/tiny-llama/model.onnx"),
		testpaths.SharedPath(t, "models/tiny-random-gpt2-fp32/past.onnx"),
		testpaths.SharedPath(t, "models/dummy-decoder-optimum/decoder.onnx"),
	} {
		if got, err := Files(p); err != nil || !slices.Equal(got, []string{p}) {
			t.Errorf("Files(%s) = %v, %v", p, got, err)
		}
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := modelgen.WriteFileExternal(path, modelgen.NewMLP([]int{4, 128, 4}, 7).Model(modelgen.MLPOptions{}), "model.onnx.data"); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "model.onnx.data")
	if got, err := Files(path); err != nil || !slices.Equal(got, []string{path, data}) {
		t.Fatalf("Files = %v, %v; want the model and its data", got, err)
	}
	os.Remove(data)
	if _, err := Files(path); err == nil || !strings.Contains(err.Error(), data) {
		t.Fatalf("missing data file: %v, want an error naming %s", err, data)
	}
}

func TestExternalDataEverywhere(t *testing.T) {
	dir := t.TempDir()
	locations := []string{"a.bin", "./b.bin", "sub/c.bin", "a.bin", "d.bin"}
	path := write(t, filepath.Join(dir, "model.onnx"), nested(locations...))
	var want []string
	for _, l := range []string{"a.bin", "b.bin", "sub/c.bin", "d.bin"} {
		p := filepath.Join(dir, l)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	got, err := Files(path)
	if err != nil || len(got) == 0 || got[0] != path {
		t.Fatalf("Files = %v, %v; want the model first", got, err)
	}
	// Files come in file order (nodes before initializers); each once.
	slices.Sort(got[1:])
	slices.Sort(want)
	if !slices.Equal(got[1:], want) {
		t.Fatalf("Files = %v; want the model and %v", got, want)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	f := func(path, want string) {
		t.Helper()
		if _, err := Files(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Files(%s) = %v, want an error with %q", filepath.Base(path), err, want)
		}
	}
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f(filepath.Join(dir, "missing.onnx"), "no such file")
	f(dir, "not a regular file")
	f(file("empty.onnx", nil), "is empty")
	f(file("text.onnx", []byte("not a model\n")), "is not a valid ONNX model")
	good, _ := modelgen.Marshal(modelgen.DemoMLP().Model(modelgen.MLPOptions{}))
	f(file("truncated.onnx", good[:len(good)-3]), "is not a valid ONNX model")
	f(write(t, filepath.Join(dir, "escape.onnx"), nested("a", "b", "c", "../x.bin", "e")), `tensor "sub_w" keeps its data in "../x.bin", outside the model's folder`)
	f(write(t, filepath.Join(dir, "abs.onnx"), nested("/etc/passwd", "b", "c", "d", "e")), "outside the model's folder")
	f(write(t, filepath.Join(dir, "missing-data.onnx"), nested("a", "b", "c", "d", "e")), `keeps its data in`)
	noLocation := nested("a", "b", "c", "d", "e")
	noLocation.Graph.Initializer[0].ExternalData = nil
	f(write(t, filepath.Join(dir, "nolocation.onnx"), noLocation), `tensor "w" has external data but no location`)
}

// FuzzFiles feeds arbitrary bytes as a model file: Files must return an
// error or a list, never panic or loop.
func FuzzFiles(f *testing.F) {
	good, _ := modelgen.Marshal(modelgen.DemoMLP().Model(modelgen.MLPOptions{}))
	f.Add(good)
	nest, _ := modelgen.Marshal(nested("a", "b", "c", "d", "e"))
	f.Add(nest)
	f.Add([]byte("not a model"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "model.onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files, err := Files(path)
		if err == nil && (len(files) == 0 || files[0] != path) {
			t.Fatalf("Files = %v without an error", files)
		}
	})
}
