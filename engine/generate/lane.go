package generate

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// seq is one sequence being generated. The lane that runs it owns the
// fields above the line; the caller reads its tokens through take.
type seq struct {
	ids     []int // prompt then generated tokens
	prompt  int
	maxNew  int
	sampler *sampler
	cached  int // positions in this sequence's cache
	own     []ort.Value
	ownLen  int // the cache length of own, after prefill

	cancelled atomic.Bool // set by the caller: stop at the next step

	mu     sync.Mutex
	out    []int
	finish string // "stop" or "length" once done
	err    error
	done   bool
	notify chan struct{}
}

func (s *seq) push(id int) {
	s.mu.Lock()
	s.out = append(s.out, id)
	s.mu.Unlock()
	s.wake()
}

func (s *seq) end(finish string, err error) {
	s.mu.Lock()
	s.finish, s.err, s.done = finish, err, true
	s.mu.Unlock()
	s.wake()
}

func (s *seq) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *seq) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns the tokens produced since the last call and whether the
// sequence has ended.
func (s *seq) take(buf []int) ([]int, bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = append(buf[:0], s.out...)
	s.out = s.out[:0]
	return buf, s.done, s.finish, s.err
}

func (s *seq) release() {
	for _, v := range s.own {
		v.Destroy()
	}
	s.own = nil
}

// lane runs one session. Its active sequences share one batched cache in
// which each row is left-padded to the longest; the cache tensors of one
// step are the next step's past as long as the batch does not change, and
// are repacked when a sequence joins or leaves.
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
		if len(joining) == 0 && len(l.active) == 0 {
			if closing {
				l.dropPast()
				return
			}
			<-l.wakeC
			continue
		}
		if h := l.m.stepHook; h != nil {
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

func (l *lane) dropPast() {
	for _, v := range l.past {
		v.Destroy()
	}
	l.past, l.pastLen = nil, 0
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
// active ones.
func (l *lane) step(joining []*seq) {
	m := l.m
	if m.opts.DisableKVCache {
		l.active = append(l.active, joining...)
		l.recomputeStep()
		return
	}
	if !m.io.batchable {
		l.soloStep(joining)
		return
	}
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
			l.failAll(err)
			return
		}
	}
	l.decodeStep()
}

type cacheRow struct {
	src    []ort.Value
	row    int
	srcLen int // the source's seq dimension
	n      int // the row's real length, right-aligned in the source
}

// repack builds the batched cache of rows, each right-aligned to the
// longest, and frees the caches they came from.
func (l *lane) repack(rows []cacheRow) error {
	io := l.m.io
	if len(rows) == 1 && rows[0].row == 0 && rows[0].n == rows[0].srcLen && !sameValues(rows[0].src, l.past) {
		// One fresh sequence alone: its own cache is the batch.
		s := l.active[0]
		l.dropPast()
		l.past, l.pastLen, s.own = s.own, s.ownLen, nil
		return nil
	}
	if len(rows) == 1 && sameValues(rows[0].src, l.past) && rows[0].row == 0 && rows[0].n == l.pastLen &&
		l.past[0].GetShape()[io.batchAxis] == 1 {
		return nil
	}
	if !io.batchable && len(rows) > 1 {
		return errors.New("internal error: batching a model that cannot be batched")
	}
	newLen := 0
	for _, r := range rows {
		newLen = max(newLen, r.n)
	}
	shape := slices.Clone(io.pastShape)
	shape[io.batchAxis] = int64(len(rows))
	shape[io.seqAxis] = int64(newLen)
	outer, mid, inner := 1, 1, 1
	for i, d := range shape {
		switch {
		case i < io.batchAxis:
			outer *= int(d)
		case i > io.batchAxis && i < io.seqAxis:
			mid *= int(d)
		case i > io.seqAxis:
			inner *= int(d)
		}
	}
	next := make([]ort.Value, len(io.past))
	for k := range io.past {
		data := make([]float32, outer*len(rows)*mid*newLen*inner)
		for b, r := range rows {
			src := r.src[k].(*ort.Tensor[float32])
			sd := src.GetData()
			srcRows := int(src.GetShape()[io.batchAxis])
			for o := range outer {
				for j := range mid {
					from := (((o*srcRows+r.row)*mid+j)*r.srcLen + r.srcLen - r.n) * inner
					to := (((o*len(rows)+b)*mid+j)*newLen + newLen - r.n) * inner
					copy(data[to:to+r.n*inner], sd[from:from+r.n*inner])
				}
			}
		}
		t, err := ort.NewTensor(ort.Shape(slices.Clone(shape)), data)
		if err != nil {
			for _, v := range next[:k] {
				v.Destroy()
			}
			return fmt.Errorf("cannot build the batched cache: %w", err)
		}
		next[k] = t
	}
	l.dropPast()
	for _, s := range l.active {
		s.release()
	}
	l.past, l.pastLen = next, newLen
	return nil
}

func sameValues(a, b []ort.Value) bool {
	return len(a) > 0 && len(b) > 0 && a[0] == b[0]
}

// failAll ends every active sequence with err.
func (l *lane) failAll(err error) {
	for _, s := range l.active {
		l.finish(s, "", err)
	}
	l.active = l.active[:0]
	l.dropPast()
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
		end := min(done+chunk, len(s.ids))
		out, err := l.runModel([][]int{s.ids[done:end]}, [][]int{positions(done, end)}, past, pastLen, []int{0})
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
	out, err := l.runModel(ids, pos, l.past, l.pastLen, rows, pads...)
	if err != nil {
		l.failAll(err)
		return
	}
	l.m.observeBatch(len(l.active))
	want := l.pastLen + 1
	l.dropPast()
	l.past, l.pastLen = out.present, out.presentLen
	if out.presentLen != want {
		l.failAll(fmt.Errorf("model %q: the cache holds %d positions after a step, want %d", l.m.opts.Name, out.presentLen, want))
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
			l.failAll(err)
		}
	}
}

// soloStep runs each sequence alone with its own cache, in turns: for
// models whose outputs do not follow the batch size or that take no
// position ids, so that left padding cannot be trusted.
func (l *lane) soloStep(joining []*seq) {
	for _, s := range joining {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
		} else if l.prefill(s) {
			l.active = append(l.active, s)
		}
	}
	kept := l.active[:0]
	for _, s := range l.active {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
			continue
		}
		out, err := l.runModel([][]int{s.ids[len(s.ids)-1:]}, [][]int{{len(s.ids) - 1}}, s.own, s.ownLen, []int{0}, s.ownLen-s.cached)
		if err != nil {
			l.finish(s, "", err)
			continue
		}
		s.release()
		s.own, s.ownLen = out.present, out.presentLen
		s.cached = out.presentLen
		if l.advance(s, out.logits[0]) {
			kept = append(kept, s)
		}
	}
	clear(l.active[len(kept):])
	l.active = kept
}

// recomputeStep runs each active sequence alone over all its tokens with
// an empty past: the no-cache reference.
func (l *lane) recomputeStep() {
	kept := l.active[:0]
	for _, s := range l.active {
		if s.cancelled.Load() {
			l.finish(s, "", errCancelled)
			continue
		}
		out, err := l.runModel([][]int{s.ids}, [][]int{positions(0, len(s.ids))}, nil, 0, []int{0})
		if err != nil {
			l.finish(s, "", err)
			continue
		}
		for _, v := range out.present {
			v.Destroy()
		}
		if l.advance(s, out.logits[0]) {
			kept = append(kept, s)
		}
	}
	clear(l.active[len(kept):])
	l.active = kept
}

func positions(from, to int) []int {
	p := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		p = append(p, i)
	}
	return p
}

type runOutput struct {
	logits     [][]float32 // the last position's logits, by batch row
	present    []ort.Value
	presentLen int
}

// runModel runs one step: ids and pos have one row per sequence, all of
// the same length; past (nil for an empty one) has pastLen positions of
// which the first pads[i] of row i are padding. rows maps a sequence to
// its logits row.
func (l *lane) runModel(ids, pos [][]int, past []ort.Value, pastLen int, rows []int, pads ...int) (runOutput, error) {
	m, io := l.m, l.m.io
	b, n := len(ids), len(ids[0])
	in := make([]ort.Value, len(io.inputNames))
	var owned []ort.Value
	defer func() {
		for _, v := range owned {
			v.Destroy()
		}
	}()
	mk := func(dt ort.TensorElementDataType, shape ort.Shape, vals []int) error {
		v, err := intTensor(dt, shape, vals)
		if err != nil {
			return err
		}
		owned = append(owned, v)
		return nil
	}
	flatIDs := slices.Concat(ids...)
	if err := mk(io.idsType, ort.NewShape(int64(b), int64(n)), flatIDs); err != nil {
		return runOutput{}, err
	}
	in[io.ids] = owned[len(owned)-1]
	total := pastLen + n
	mask := make([]int, b*total)
	for i := range b {
		pad := 0
		if len(pads) > 0 {
			pad = pads[i]
		}
		for j := pad; j < total; j++ {
			mask[i*total+j] = 1
		}
	}
	if err := mk(io.maskType, ort.NewShape(int64(b), int64(total)), mask); err != nil {
		return runOutput{}, err
	}
	in[io.mask] = owned[len(owned)-1]
	if io.pos >= 0 {
		if err := mk(io.posType, ort.NewShape(int64(b), int64(n)), slices.Concat(pos...)); err != nil {
			return runOutput{}, err
		}
		in[io.pos] = owned[len(owned)-1]
	}
	if io.useCacheBranch >= 0 {
		v, err := ort.NewTensor(ort.NewShape(1), []bool{past != nil})
		if err != nil {
			return runOutput{}, err
		}
		owned = append(owned, v)
		in[io.useCacheBranch] = v
	}
	if past == nil {
		shape := slices.Clone(io.pastShape)
		shape[io.batchAxis] = int64(b)
		shape[io.seqAxis] = 0
		for _, k := range io.past {
			v, err := ort.NewTensor(ort.Shape(slices.Clone(shape)), []float32{})
			if err != nil {
				return runOutput{}, err
			}
			owned = append(owned, v)
			in[k] = v
		}
	} else {
		for j, k := range io.past {
			in[k] = past[j]
		}
	}
	out := make([]ort.Value, len(io.outputNames))
	if err := l.sess.Run(in, out); err != nil {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
		return runOutput{}, fmt.Errorf("model %q: %w", m.opts.Name, err)
	}
	res := runOutput{present: make([]ort.Value, len(io.present))}
	for j, k := range io.present {
		res.present[j] = out[k]
		out[k] = nil
	}
	defer func() {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	lt, ok := out[io.logits].(*ort.Tensor[float32])
	if !ok {
		destroyAll(res.present)
		return runOutput{}, fmt.Errorf("model %q: logits are %T, want float32", m.opts.Name, out[io.logits])
	}
	// Keep the logits tensor's memory: the rows below point into it and
	// outlive Destroy, which only releases the ORT value.
	shape, data := lt.GetShape(), lt.GetData()
	rowsIn, seqLen, v := int(shape[0]), 1, int(shape[len(shape)-1])
	if len(shape) == 3 {
		seqLen = int(shape[1])
	}
	if v != m.vocab || seqLen < 1 {
		destroyAll(res.present)
		return runOutput{}, fmt.Errorf("model %q: logits have shape %v, want [%d, %d, %d]", m.opts.Name, shape, b, n, m.vocab)
	}
	for _, r := range rows {
		if r >= rowsIn {
			destroyAll(res.present)
			return runOutput{}, fmt.Errorf("model %q: logits have shape %v for a batch of %d", m.opts.Name, shape, b)
		}
		off := (r*seqLen + seqLen - 1) * v
		res.logits = append(res.logits, data[off:off+v:off+v])
	}
	ps := res.present[0].GetShape()
	if len(ps) != len(io.pastShape) {
		destroyAll(res.present)
		return runOutput{}, fmt.Errorf("model %q: present has shape %v", m.opts.Name, ps)
	}
	res.presentLen = int(ps[io.seqAxis])
	for _, p := range res.present {
		if _, ok := p.(*ort.Tensor[float32]); !ok {
			destroyAll(res.present)
			return runOutput{}, fmt.Errorf("model %q: present is %T, want float32", m.opts.Name, p)
		}
	}
	return res, nil
}

func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}

func intTensor(dt ort.TensorElementDataType, shape ort.Shape, vals []int) (ort.Value, error) {
	if dt == ort.TensorElementDataTypeInt32 {
		d := make([]int32, len(vals))
		for i, v := range vals {
			d[i] = int32(v)
		}
		return ort.NewTensor(shape, d)
	}
	d := make([]int64, len(vals))
	for i, v := range vals {
		d[i] = int64(v)
	}
	return ort.NewTensor(shape, d)
}

var errCancelled = errors.New("generation cancelled")
