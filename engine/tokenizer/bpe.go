package tokenizer

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// model turns one pre-tokenized word into ids.
type model interface {
	encode(word string, out []int) []int
}

type pair struct{ a, b int }

type merge struct{ rank, id int }

type bpe struct {
	vocab        map[string]int
	merges       map[pair]merge
	unk          int // -1 if none
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix
	byteIDs      [256]int
	cache        wordCache
}

func newBPE(m *modelConfig) (*bpe, error) {
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("BPE dropout %v is not supported: it makes encoding random", *m.Dropout)
	}
	b := &bpe{vocab: m.Vocab, merges: make(map[pair]merge, len(m.Merges)), unk: -1,
		fuseUnk: m.FuseUnk, byteFallback: m.ByteFallback, ignoreMerges: m.IgnoreMerges,
		prefix: strOr(m.ContinuingSubwordPrefix, ""), suffix: strOr(m.EndOfWordSuffix, "")}
	b.cache.m = map[string][]int{}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocab", *m.UnkToken)
		}
		b.unk = id
	}
	for i := range b.byteIDs {
		id, ok := m.Vocab[fmt.Sprintf("<0x%02X>", i)]
		if !ok {
			id = -1
		}
		b.byteIDs[i] = id
	}
	for i, raw := range m.Merges {
		var l, r string
		var s string
		var arr []string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			parts := strings.Split(s, " ")
			if len(parts) != 2 {
				return nil, fmt.Errorf("merges[%d] %q is not two space-separated tokens", i, s)
			}
			l, r = parts[0], parts[1]
		case json.Unmarshal(raw, &arr) == nil && len(arr) == 2:
			l, r = arr[0], arr[1]
		default:
			return nil, fmt.Errorf("merges[%d] is neither \"a b\" nor [\"a\",\"b\"]", i)
		}
		a, okA := m.Vocab[l]
		c, okB := m.Vocab[r]
		n, okN := m.Vocab[l+r]
		if !okA || !okB || !okN {
			return nil, fmt.Errorf("merges[%d] %q + %q uses a token missing from the vocab", i, l, r)
		}
		// A repeated pair takes its last rank, as in Rust and JavaScript.
		b.merges[pair{a, c}] = merge{i, n}
	}
	return b, nil
}

func (b *bpe) encode(word string, out []int) []int {
	if ids, ok := b.cache.get(word); ok {
		return append(out, ids...)
	}
	ids := b.tokenize(word)
	b.cache.put(word, ids)
	return append(out, ids...)
}

type symbol struct {
	id, prev, next int
	gone           bool
}

// tokenize follows Rust's BPE::merge_word: split into characters (or
// fallback bytes, or unk), then apply merges lowest rank first, leftmost on
// ties, with a heap so that long words stay O(n log n).
func (b *bpe) tokenize(word string) []int {
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return []int{id}
		}
	}
	syms := make([]symbol, 0, len(word))
	add := func(id int) { syms = append(syms, symbol{id: id, prev: len(syms) - 1, next: len(syms) + 1}) }
	unkPending := false
	for i := 0; i < len(word); {
		_, w := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+w]
		if i > 0 && b.prefix != "" {
			s = b.prefix + s
		}
		if i+w == len(word) && b.suffix != "" {
			s += b.suffix
		}
		i += w
		if id, ok := b.vocab[s]; ok {
			if unkPending {
				add(b.unk)
				unkPending = false
			}
			add(id)
			continue
		}
		if b.byteFallback && b.allBytes(s) {
			if unkPending {
				add(b.unk)
				unkPending = false
			}
			for j := 0; j < len(s); j++ {
				add(b.byteIDs[s[j]])
			}
			continue
		}
		if b.unk >= 0 {
			if unkPending && !b.fuseUnk {
				add(b.unk)
			}
			unkPending = true
		}
	}
	if unkPending {
		add(b.unk)
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1

	q := &mergeQueue{}
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[pair{syms[i].id, syms[i+1].id}]; ok {
			q.items = append(q.items, qitem{m.rank, i, m.id})
		}
	}
	heap.Init(q)
	for q.Len() > 0 {
		top := heap.Pop(q).(qitem)
		s := &syms[top.pos]
		if s.gone || s.next < 0 {
			continue
		}
		right := &syms[s.next]
		if m, ok := b.merges[pair{s.id, right.id}]; !ok || m.id != top.id {
			continue // stale: a neighbour merged since this was queued
		}
		s.id = top.id
		right.gone = true
		s.next = right.next
		if s.next >= 0 {
			syms[s.next].prev = top.pos
			if m, ok := b.merges[pair{s.id, syms[s.next].id}]; ok {
				heap.Push(q, qitem{m.rank, top.pos, m.id})
			}
		}
		if s.prev >= 0 {
			if m, ok := b.merges[pair{syms[s.prev].id, s.id}]; ok {
				heap.Push(q, qitem{m.rank, s.prev, m.id})
			}
		}
	}
	ids := make([]int, 0, len(syms))
	for i := 0; i >= 0; i = syms[i].next {
		ids = append(ids, syms[i].id)
	}
	return ids
}

func (b *bpe) allBytes(s string) bool {
	for j := 0; j < len(s); j++ {
		if b.byteIDs[s[j]] < 0 {
			return false
		}
	}
	return true
}

type qitem struct{ rank, pos, id int }

type mergeQueue struct{ items []qitem }

func (q *mergeQueue) Len() int { return len(q.items) }
func (q *mergeQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}
func (q *mergeQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *mergeQueue) Push(x any)    { q.items = append(q.items, x.(qitem)) }
func (q *mergeQueue) Pop() any {
	x := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return x
}

// wordCache remembers the ids of recent words. It is bounded: when full it
// starts over, which is cheap and keeps memory flat under adversarial input.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int
}

const (
	cacheWords   = 10000
	cacheWordLen = 256
)

func (c *wordCache) get(w string) ([]int, bool) {
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int) {
	if len(w) > cacheWordLen {
		return
	}
	c.mu.Lock()
	if len(c.m) >= cacheWords {
		clear(c.m)
	}
	c.m[w] = ids
	c.mu.Unlock()
}
