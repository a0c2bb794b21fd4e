package generate

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/internal/testpaths"
)

func tinyLlamaDir(t testing.TB) string {
	return filepath.Join(testpaths.RepoRoot(t), "examples", "models", "tiny-llama")
}

// sharedModel returns a model folder under shared/models; a missing one
// skips the test, or fails it with CI=true.
func sharedModel(t testing.TB, name string) string {
	t.Helper()
	return testpaths.SharedPath(t, filepath.Join("models", name))
}

var (
	rtOnce sync.Once
	rt     *engine.Runtime
	rtErr  error
)

func ortRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rtOnce.Do(func() { rt, rtErr = engine.Init(engine.RuntimeOptions{}) })
	if rtErr != nil {
		t.Fatalf("ONNX Runtime: %v", rtErr)
	}
	return rt
}

// load opens the model in dir and closes it when the test ends.
func load(t testing.TB, opts Options) *Model {
	t.Helper()
	m, err := Load(ortRuntime(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func greedyIDs(t testing.TB, m *Model, prompt []int, n int) ([]int, Result) {
	t.Helper()
	var ids []int
	res, err := m.GenerateIDs(context.Background(), prompt, Request{MaxTokens: n}, func(id int) error {
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, res
}
