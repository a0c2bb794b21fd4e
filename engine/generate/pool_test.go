package generate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLanesGrowAndShrinkUnderLoad adds lanes and drains them away while
// generations run: none fails or is cut short.
func TestLanesGrowAndShrinkUnderLoad(t *testing.T) {
	m := load(t, Options{Dir: tinyLlamaDir(t), Instances: 1, MaxInstances: 3, MaxSequences: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for c := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := m.GenerateIDs(ctx, []int{1 + c, 2, 3}, Request{MaxTokens: 6}, func(int) error { return nil })
				if err != nil || res.CompletionTokens < 1 || res.FinishReason == "" {
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
				t.Fatalf("only %d generations served", ok.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitServed(8)
	for want := 2; want <= 3; want++ {
		if err := m.AddInstance(ctx); err != nil {
			t.Fatal(err)
		}
		if got := m.Instances(); got != want {
			t.Fatalf("Instances() = %d, want %d", got, want)
		}
		waitServed(ok.Load() + 8)
	}
	if err := m.AddInstance(ctx); !errors.Is(err, ErrInstanceBounds) {
		t.Errorf("AddInstance past MaxInstances: %v, want ErrInstanceBounds", err)
	}
	for want := 2; want >= 1; want-- {
		if err := m.RemoveInstance(ctx); err != nil {
			t.Fatal(err)
		}
		if got := m.Instances(); got != want {
			t.Fatalf("Instances() = %d, want %d", got, want)
		}
		waitServed(ok.Load() + 8)
	}
	if err := m.RemoveInstance(ctx); !errors.Is(err, ErrInstanceBounds) {
		t.Errorf("RemoveInstance of the last: %v, want ErrInstanceBounds", err)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d generations failed while lanes changed; first: %v", n, firstErr.Load())
	}
}
