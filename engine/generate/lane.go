package generate

import (
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// The decode loop is split by job: this file schedules (which sequences
// run this step, joining and leaving), kvcache.go packs their caches into
// one batch, ortio.go builds the tensors and runs ONNX Runtime, and seq.go
// hands a sequence's tokens to its caller.

// lane runs one session. Its active sequences share one batched cache in
// which each row is left-padded to the longest; the cache tensors of one
// step are the next step's past as long as the batch does not change, and
// are repacked when a sequence joins or leaves. Its alone sequences each
// keep their own cache and run on their own at every step.
type lane struct {
	m    *Model
	sess *ort.DynamicAdvancedSession

	mu      sync.Mutex
	joining []*seq
	load    int // sequences assigned and not finished
	closing bool
	wakeC   chan struct{}
	done    chan struct{}

	// Owned by the run goroutine.
	active  []*seq
	past    []ort.Value // batched cache of active, in io.past order
	pastLen int
	alone   []*seq
}

func newLane(m *Model, s *ort.DynamicAdvancedSession) *lane {
	return &lane{m: m, sess: s, wakeC: make(chan struct{}, 1), done: make(chan struct{})}
}

func (l *lane) add(s *seq) {
	l.mu.Lock()
	l.joining = append(l.joining, s)
	l.load++
	l.mu.Unlock()
	select {
	case l.wakeC <- struct{}{}:
	default:
	}
}

func (l *lane) stop() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	select {
	case l.wakeC <- struct{}{}:
	default:
	}
	<-l.done
}

func (l *lane) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		joining := l.joining
		l.joining = nil
		closing := l.closing
		l.mu.Unlock()
		if len(joining) == 0 && len(l.active) == 0 && len(l.alone) == 0 {
			if closing {
				l.dropPast()
				return
			}
			<-l.wakeC
			continue
		}
		if h := l.m.beforeStep; h != nil {
			h()
		}
		l.safeStep(joining)
	}
}

// finish ends s and gives its slot back.
func (l *lane) finish(s *seq, reason string, err error) {
	s.release()
	if s.isDone() {
		return
	}
	s.end(reason, err)
	l.mu.Lock()
	l.load--
	l.mu.Unlock()
	<-l.m.slots
}

// safeStep runs step and turns a panic into an error for the sequences
// of this lane, so that a bug fails the requests rather than the server.
func (l *lane) safeStep(joining []*seq) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("model %q: internal error in the decode loop: %v", l.m.opts.Name, r)
			for _, s := range joining {
				l.finish(s, "", err)
			}
			l.failAll(err)
		}
	}()
	l.step(joining)
}

// step prefills the joining sequences, then runs one decode step for all
// of the lane's: one batch for those that share it, one run each for those
// decoded alone (seeded ones, and every one of a model that cannot be
// batched).
func (l *lane) step(joining []*seq) {
	var batched, alone []*seq
	for _, s := range joining {
		if s.alone || !l.m.io.batchable {
			alone = append(alone, s)
		} else {
			batched = append(batched, s)
		}
	}
	l.batchStep(batched)
	l.soloStep(alone)
}

// batchStep prefills the joining sequences, then runs one decode step for
// all active ones in one batch.
func (l *lane) batchStep(joining []*seq) {
	changed := false
	for _, s := range joining {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
			continue
		}
		if !l.prefill(s) {
			continue
		}
		l.active = append(l.active, s)
		changed = true
	}
	// Drop the sequences the caller gave up on.
	kept := l.active[:0]
	var rows []cacheRow
	for i, s := range l.active {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
			changed = true
			continue
		}
		kept = append(kept, s)
		if s.own != nil {
			rows = append(rows, cacheRow{src: s.own, row: 0, srcLen: s.ownLen, n: s.cached})
		} else {
			rows = append(rows, cacheRow{src: l.past, row: i, srcLen: l.pastLen, n: s.cached})
		}
	}
	clear(l.active[len(kept):])
	l.active = kept
	if len(l.active) == 0 {
		l.dropPast()
		return
	}
	if changed {
		if err := l.repack(rows); err != nil {
			l.failBatch(err)
			return
		}
	}
	l.decodeStep()
}

// failBatch ends every active sequence with err.
func (l *lane) failBatch(err error) {
	for _, s := range l.active {
		l.finish(s, "", err)
	}
	l.active = l.active[:0]
	l.dropPast()
}

// failAll ends every sequence of the lane with err.
func (l *lane) failAll(err error) {
	l.failBatch(err)
	for _, s := range l.alone {
		l.finish(s, "", err)
	}
	l.alone = l.alone[:0]
}

// prefill runs s's prompt alone with an empty past, samples its first
// token and keeps its cache for it to join the batch. It reports whether s
// goes on. A long prompt goes in chunks of prefillChunk tokens, each with
// the cache of the ones before: the logits of a step cover every position
// it feeds, and for a long prompt and a large vocabulary those would not
// fit in memory at once.
func (l *lane) prefill(s *seq) bool {
	chunk := len(s.ids)
	if l.m.io.batchable && l.m.prefillChunk > 0 {
		chunk = l.m.prefillChunk
	}
	var past []ort.Value
	pastLen := 0
	for done := 0; done < len(s.ids); {
		if done > 0 && s.cancelled.Load() {
			// A long prompt is not read on for a caller that gave up.
			destroyAll(past)
			l.finish(s, "", errCancelled)
			return false
		}
		end := min(done+chunk, len(s.ids))
		out, err := l.runModel([][]int{s.ids[done:end]}, [][]int{positions(done, end)}, past, pastLen, []int{0}, nil)
		destroyAll(past)
		if err != nil {
			l.finish(s, "", err)
			return false
		}
		past, pastLen = out.present, out.presentLen
		if l.m.io.batchable && pastLen != end {
			destroyAll(past)
			l.finish(s, "", fmt.Errorf("model %q: the cache after %d prompt tokens holds %d positions", l.m.opts.Name, end, pastLen))
			return false
		}
		if done = end; done == len(s.ids) {
			s.own, s.ownLen = past, pastLen
			s.cached = len(s.ids)
			if !l.m.io.batchable {
				s.cached = pastLen
			}
			return l.advance(s, out.logits[0])
		}
	}
	return false
}

// advance samples the next token of s from logits and reports whether s
// goes on.
func (l *lane) advance(s *seq, logits []float32) bool {
	id := s.sampler.next(logits, s.ids)
	s.ids = append(s.ids, id)
	s.push(id)
	switch {
	case l.m.eos[id]:
		l.finish(s, "stop", nil)
		return false
	case len(s.ids)-s.prompt >= s.maxNew:
		l.finish(s, "length", nil)
		return false
	}
	return true
}

// decodeStep feeds the last token of every active sequence.
func (l *lane) decodeStep() {
	ids := make([][]int, len(l.active))
	pos := make([][]int, len(l.active))
	pads := make([]int, len(l.active))
	rows := make([]int, len(l.active))
	for i, s := range l.active {
		ids[i] = s.ids[len(s.ids)-1:]
		pos[i] = []int{len(s.ids) - 1}
		pads[i] = l.pastLen - s.cached
		rows[i] = i
	}
	out, err := l.runModel(ids, pos, l.past, l.pastLen, rows, pads)
	if err != nil {
		l.failBatch(err)
		return
	}
	l.m.observeBatch(len(l.active))
	want := l.pastLen + 1
	l.dropPast()
	l.past, l.pastLen = out.present, out.presentLen
	if out.presentLen != want {
		l.failBatch(fmt.Errorf("model %q: the cache holds %d positions after a step, want %d", l.m.opts.Name, out.presentLen, want))
		return
	}
	kept := l.active[:0]
	var rowsKept []cacheRow
	left := false
	for i, s := range l.active {
		s.cached++
		if l.advance(s, out.logits[i]) {
			kept = append(kept, s)
			rowsKept = append(rowsKept, cacheRow{src: l.past, row: i, srcLen: l.pastLen, n: s.cached})
		} else {
			left = true
		}
	}
	clear(l.active[len(kept):])
	l.active = kept
	if len(l.active) == 0 {
		l.dropPast()
		return
	}
	if left {
		if err := l.repack(rowsKept); err != nil {
			l.failBatch(err)
		}
	}
}

// soloStep prefills the joining sequences, then runs each alone sequence
// on its own with its own cache, in turns. That is how every sequence of a
// model whose outputs do not follow the batch size or that takes no
// position ids runs, as left padding cannot be trusted there; and how a
// seeded one runs, as its logits in a batch would not be bit for bit those
// it gets alone (its row is padded to the longest) and a seed must give
// the same text whatever else the lane runs.
func (l *lane) soloStep(joining []*seq) {
	for _, s := range joining {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
		} else if l.prefill(s) {
			l.alone = append(l.alone, s)
		}
	}
	kept := l.alone[:0]
	for _, s := range l.alone {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
			continue
		}
		out, err := l.runModel([][]int{s.ids[len(s.ids)-1:]}, [][]int{{len(s.ids) - 1}}, s.own, s.ownLen, []int{0}, []int{s.ownLen - s.cached})
		if err != nil {
			l.finish(s, "", err)
			continue
		}
		l.m.observeBatch(1)
		s.release()
		s.own, s.ownLen = out.present, out.presentLen
		s.cached = out.presentLen
		if l.advance(s, out.logits[0]) {
			kept = append(kept, s)
		}
	}
	clear(l.alone[len(kept):])
	l.alone = kept
}

func positions(from, to int) []int {
	p := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		p = append(p, i)
	}
	return p
}

var errCancelled = errors.New("generation cancelled")
