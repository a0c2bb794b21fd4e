package generate

import (
	"errors"
	"fmt"
	"slices"
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
// keep their own cache and run on their own at every step. Its prefilling
// sequences are being fed their prompts, at most prefillChunk tokens in
// all per step, so that a long prompt never holds the others' next token
// for longer than one chunk.
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
	active     []*seq
	past       []ort.Value // batched cache of active, in io.past order
	pastLen    int
	alone      []*seq
	prefilling []*seq // in turn order: those not fed at the last step first
	fedLast    int    // prefilling[fedLast:] were fed at the last step
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
		if len(joining) == 0 && len(l.active) == 0 && len(l.alone) == 0 && len(l.prefilling) == 0 {
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
			for _, s := range l.prefilling {
				l.finish(s, "", err)
			}
			l.prefilling, l.fedLast = nil, 0
		}
	}()
	l.step(joining)
}

// step feeds the prefilling sequences (the joining ones last) one chunk
// of prompt, then runs one decode step for all of the lane's: one batch
// for those that share it, one run each for those decoded alone (seeded
// ones, and every one of a model that cannot be batched). A sequence whose
// prompt is in joins them at this step.
func (l *lane) step(joining []*seq) {
	// Newcomers go after those that waited but before those just fed.
	l.prefilling = slices.Concat(l.prefilling[:l.fedLast], joining, l.prefilling[l.fedLast:])
	var batched []*seq
	for _, s := range l.prefillStep() {
		if s.alone || !l.m.io.batchable {
			l.alone = append(l.alone, s)
		} else {
			batched = append(batched, s)
		}
	}
	l.batchStep(batched)
	l.soloStep()
}

// prefillStep feeds the prefilling sequences at most prefillChunk prompt
// tokens in all, in turn: one whose prompt is not all in goes behind
// those still waiting and those yet to come, so every prompt advances at
// least every few steps and none starves (sequences come at most
// max_sequences at a time). It returns the sequences whose prompts are in and that
// go on, each with its first token. A model that cannot be batched takes
// each prompt whole, as its cache cannot be trusted to grow in parts.
func (l *lane) prefillStep() (ready []*seq) {
	budget := l.m.prefillChunk
	chunked := l.m.io.batchable && budget > 0
	type part struct {
		s *seq
		n int
	}
	var plan, whole []part
	var behind []*seq
	kept := l.prefilling[:0]
	for _, s := range l.prefilling {
		if s.cancelled.Load() {
			// A long prompt is not read on for a caller that gave up.
			l.finish(s, "", errCancelled)
			continue
		}
		n := len(s.ids) - s.fed
		if chunked {
			if budget <= 0 {
				kept = append(kept, s)
				continue
			}
			n = min(n, budget)
			budget -= n
		}
		if l.m.io.batchable && !s.alone && s.fed == 0 && n == len(s.ids) {
			whole = append(whole, part{s, n})
		} else {
			plan = append(plan, part{s, n})
		}
	}
	clear(l.prefilling[len(kept):])
	// Short prompts that came together go in one run: for a model whose
	// step costs its weights, as many as one. Padded to the longest, the
	// run still feeds at most prefillChunk positions, which bound its
	// logits.
	var group []*seq
	longest := 0
	for _, p := range whole {
		if n := max(longest, p.n); (len(group)+1)*n <= l.m.prefillChunk {
			group, longest = append(group, p.s), n
		} else {
			plan = append(plan, p)
		}
	}
	if len(group) > 1 {
		ready = append(ready, l.feedTogether(group)...)
	} else if len(group) == 1 {
		plan = append([]part{{group[0], len(group[0].ids)}}, plan...)
	}
	for _, p := range plan {
		in, goes := l.feed(p.s, p.n)
		switch {
		case !goes:
		case in:
			ready = append(ready, p.s)
		default:
			behind = append(behind, p.s)
		}
	}
	l.prefilling, l.fedLast = append(kept, behind...), len(kept)
	return ready
}

// feedTogether runs the whole prompts of group in one batch, left-padded
// to the longest as a decode step pads its rows, and gives each sequence
// its own copy of its cache rows, as feed would have left it. It returns
// the sequences that go on, each with its first token.
func (l *lane) feedTogether(group []*seq) (ready []*seq) {
	longest := 0
	for _, s := range group {
		longest = max(longest, len(s.ids))
	}
	ids := make([][]int, len(group))
	pos := make([][]int, len(group))
	pads := make([]int, len(group))
	rows := make([]int, len(group))
	for i, s := range group {
		pads[i], rows[i] = longest-len(s.ids), i
		ids[i] = append(make([]int, pads[i], longest), s.ids...)
		pos[i] = append(make([]int, pads[i], longest), positions(0, len(s.ids))...)
	}
	out, err := l.runModel(ids, pos, nil, 0, rows, pads)
	if err == nil && out.presentLen != longest {
		destroyAll(out.present)
		err = fmt.Errorf("model %q: the cache after %d prompt tokens holds %d positions", l.m.opts.Name, longest, out.presentLen)
	}
	if err != nil {
		for _, s := range group {
			l.finish(s, "", err)
		}
		return nil
	}
	defer destroyAll(out.present)
	for i, s := range group {
		own, n, err := l.m.gather([]cacheRow{{src: out.present, row: i, srcLen: longest, n: len(s.ids)}})
		if err != nil {
			l.finish(s, "", err)
			continue
		}
		if l.m.onEvent != nil {
			l.m.event(Event{Kind: "prefill", Seq: s.id, Tokens: len(s.ids), Batch: seqIDs(group)})
		}
		s.own, s.ownLen, s.fed, s.cached = own, n, len(s.ids), len(s.ids)
		if l.advance(s, out.logits[i]) {
			ready = append(ready, s)
		}
	}
	return ready
}

func seqIDs(seqs []*seq) []int {
	ids := make([]int, len(seqs))
	for i, s := range seqs {
		ids[i] = s.id
	}
	return ids
}

// batchStep adds the joining sequences, their prompts in, to the active
// ones and runs one decode step for all of them in one batch.
func (l *lane) batchStep(joining []*seq) {
	changed := len(joining) > 0
	l.active = append(l.active, joining...)
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

// feed runs the next n tokens of s's prompt on their own, with the cache
// of the ones before (none for the first). A step's logits cover every
// position it feeds, so n also bounds their memory, which for a long
// prompt and a large vocabulary would not fit at once. Once the prompt is
// all in, feed samples the first token, and s's cache waits for it to join
// the batch. It reports whether the prompt is in, and whether s goes on.
func (l *lane) feed(s *seq, n int) (in, goes bool) {
	from, end := s.fed, s.fed+n
	out, err := l.runModel([][]int{s.ids[from:end]}, [][]int{positions(from, end)}, s.own, s.ownLen, []int{0}, nil)
	if err != nil {
		l.finish(s, "", err)
		return false, false
	}
	s.release()
	l.m.event(Event{Kind: "prefill", Seq: s.id, Tokens: n})
	s.own, s.ownLen, s.fed = out.present, out.presentLen, end
	if l.m.io.batchable && s.ownLen != end {
		l.finish(s, "", fmt.Errorf("model %q: the cache after %d prompt tokens holds %d positions", l.m.opts.Name, end, s.ownLen))
		return false, false
	}
	if end < len(s.ids) {
		return false, true
	}
	s.cached = len(s.ids)
	if !l.m.io.batchable {
		s.cached = s.ownLen
	}
	return true, l.advance(s, out.logits[0])
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
	if l.m.onEvent != nil {
		l.m.event(Event{Kind: "decode", Tokens: len(l.active), Batch: seqIDs(l.active)})
	}
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

// soloStep runs each alone sequence on its own with its own cache, in
// turns. That is how every sequence of a
// model whose outputs do not follow the batch size or that takes no
// position ids runs, as left padding cannot be trusted there; and how a
// seeded one runs, as its logits in a batch would not be bit for bit those
// it gets alone (its row is padded to the longest) and a seed must give
// the same text whatever else the lane runs.
func (l *lane) soloStep() {
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
		l.m.event(Event{Kind: "decode", Tokens: 1, Batch: []int{s.id}})
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
