package generate

import (
	"errors"
	"fmt"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// The lane's batched cache: one tensor per past input (io.past order),
// each [.., batch, .., seq, ..] with the batch and sequence axes of
// io.batchAxis and io.seqAxis. Row i belongs to lane.active[i] and holds
// that sequence's s.cached positions right-aligned, left-padded to
// lane.pastLen; the attention mask hides the padding.

// cacheRow is one sequence's cache inside a source: a row of a batched
// cache or a fresh sequence's own cache.
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
	next, newLen, err := l.m.gather(rows)
	if err != nil {
		return err
	}
	l.dropPast()
	for _, s := range l.active {
		s.release()
	}
	l.past, l.pastLen = next, newLen
	return nil
}

// gather copies rows into a new cache, each right-aligned to the longest,
// and returns it with its length. The sources stay as they are.
func (m *Model) gather(rows []cacheRow) ([]ort.Value, int, error) {
	io := m.io
	newLen := 0
	for _, r := range rows {
		newLen = max(newLen, r.n)
	}
	shape := slices.Clone(io.pastShape)
	shape[io.batchAxis] = int64(len(rows))
	shape[io.seqAxis] = int64(newLen)
	// A cache tensor is outer x batch x mid x seq x inner elements.
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
	// Copies move bytes: inner counts bytes below, whatever the element.
	inner *= elemSize(io.cacheType)
	next := make([]ort.Value, len(io.past))
	for k := range io.past {
		data := make([]byte, outer*len(rows)*mid*newLen*inner)
		for b, r := range rows {
			sd, err := floatBytes(r.src[k])
			if err != nil {
				destroyAll(next[:k])
				return nil, 0, fmt.Errorf("cannot build the batched cache: %w", err)
			}
			srcRows := int(r.src[k].GetShape()[io.batchAxis])
			for o := range outer {
				for j := range mid {
					from := (((o*srcRows+r.row)*mid+j)*r.srcLen + r.srcLen - r.n) * inner
					to := (((o*len(rows)+b)*mid+j)*newLen + newLen - r.n) * inner
					copy(data[to:to+r.n*inner], sd[from:from+r.n*inner])
				}
			}
		}
		t, err := newFloatTensor(io.cacheType, shape, data)
		if err != nil {
			for _, v := range next[:k] {
				v.Destroy()
			}
			return nil, 0, fmt.Errorf("cannot build the batched cache: %w", err)
		}
		next[k] = t
	}
	return next, newLen, nil
}

func sameValues(a, b []ort.Value) bool {
	return len(a) > 0 && len(b) > 0 && a[0] == b[0]
}

func (l *lane) dropPast() {
	for _, v := range l.past {
		v.Destroy()
	}
	l.past, l.pastLen = nil, 0
}
