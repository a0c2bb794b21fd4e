package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInstancesGrowAndShrinkUnderLoad adds instances up to the most and
// removes them down to one while clients keep the queue busy: every
// request is answered, and rightly.
func TestInstancesGrowAndShrinkUnderLoad(t *testing.T) {
	path, mlp := demoModel(t, 0)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path, Instances: 1, MaxInstances: 3, Batching: BatchOptions{Enabled: true, MaxBatchSize: 4, MaxQueueSize: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for c := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				x := rowsInput(1, 4, c*1000+i)
				out, err := m.Infer(ctx, []Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: f32Bytes(x)}}, nil)
				if err != nil || !closeTo(bytesF32(out[0].Data), mlp.Forward(x, 1)) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitServed := func(n int64) {
		t.Helper()
		for ok.Load() < n {
			if ctx.Err() != nil {
				t.Fatalf("only %d requests served", ok.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitServed(20)
	for want := 2; want <= 3; want++ {
		if err := m.AddInstance(ctx); err != nil {
			t.Fatal(err)
		}
		if got := m.Instances(); got != want {
			t.Fatalf("Instances() = %d after AddInstance, want %d", got, want)
		}
		waitServed(ok.Load() + 20)
	}
	if err := m.AddInstance(ctx); !errors.Is(err, ErrInstanceBounds) {
		t.Errorf("AddInstance past MaxInstances: %v, want ErrInstanceBounds", err)
	}
	for want := 2; want >= 1; want-- {
		if err := m.RemoveInstance(ctx); err != nil {
			t.Fatal(err)
		}
		if got := m.Instances(); got != want {
			t.Fatalf("Instances() = %d after RemoveInstance, want %d", got, want)
		}
		waitServed(ok.Load() + 20)
	}
	if err := m.RemoveInstance(ctx); !errors.Is(err, ErrInstanceBounds) {
		t.Errorf("RemoveInstance of the last: %v, want ErrInstanceBounds", err)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests failed while instances changed; first: %v", n, firstErr.Load())
	}
}
