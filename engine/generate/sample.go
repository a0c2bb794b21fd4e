package generate

import (
	"math"
	"math/rand/v2"
	"slices"
)

// sampler picks tokens from logits as a request asks. Its random source is
// seeded per sequence, so a seed gives the same tokens whatever else the
// server is doing.
type sampler struct {
	temperature float64
	topP, minP  float64
	topK        int
	penalty     float64
	rng         *rand.Rand

	// Scratch, reused across steps.
	cand  []candidate
	seen  map[int]bool
	probs []float64
}

type candidate struct {
	id    int
	logit float64
}

func newSampler(r *Request, seed uint64) *sampler {
	return &sampler{
		temperature: r.Temperature,
		topP:        r.TopP,
		minP:        r.MinP,
		topK:        r.TopK,
		penalty:     r.RepetitionPenalty,
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// next returns the next token given the logits of the last position and
// the sequence so far (for the repetition penalty). logits is not changed.
func (s *sampler) next(logits []float32, history []int) int {
	penalize := s.penalty > 0 && s.penalty != 1
	if s.temperature == 0 {
		if !penalize {
			return argmax(logits)
		}
		s.penalized(logits, history)
		best := 0
		for i, c := range s.cand {
			if c.logit > s.cand[best].logit {
				best = i
			}
		}
		return s.cand[best].id
	}
	if penalize {
		s.penalized(logits, history)
	} else {
		s.cand = s.cand[:0]
		for id, x := range logits {
			s.cand = append(s.cand, candidate{id, float64(x)})
		}
	}
	c := s.cand
	for i := range c {
		c[i].logit /= s.temperature
	}
	if s.topK <= 0 && (s.topP <= 0 || s.topP >= 1) {
		return s.sampleUnsorted(c)
	}
	// Sort by logit, highest first; ties by id so the order is total and
	// a seed reproduces the same token.
	slices.SortFunc(c, func(a, b candidate) int {
		switch {
		case a.logit > b.logit:
			return -1
		case a.logit < b.logit:
			return 1
		}
		return a.id - b.id
	})
	if s.topK > 0 && s.topK < len(c) {
		c = c[:s.topK]
	}
	// Softmax over what is left.
	s.probs = s.probs[:0]
	top := c[0].logit
	var sum float64
	for _, x := range c {
		p := math.Exp(x.logit - top)
		s.probs = append(s.probs, p)
		sum += p
	}
	for i := range s.probs {
		s.probs[i] /= sum
	}
	if s.minP > 0 {
		cut := s.minP * s.probs[0]
		n := 1
		for n < len(c) && s.probs[n] >= cut {
			n++
		}
		c, s.probs = c[:n], s.probs[:n]
	}
	if s.topP > 0 && s.topP < 1 {
		var cum, total float64
		for _, p := range s.probs {
			total += p
		}
		n := 0
		for n < len(c) {
			cum += s.probs[n] / total
			n++
			if cum >= s.topP {
				break
			}
		}
		c, s.probs = c[:n], s.probs[:n]
	}
	var total float64
	for _, p := range s.probs {
		total += p
	}
	r := s.rng.Float64() * total
	for i, p := range s.probs {
		r -= p
		if r < 0 {
			return c[i].id
		}
	}
	return c[len(c)-1].id
}

// sampleUnsorted draws from the softmax of c in id order. Without top_k or
// top_p the order does not matter, so the per-token sort of the whole
// vocabulary is skipped; min_p needs only the largest probability.
func (s *sampler) sampleUnsorted(c []candidate) int {
	top := math.Inf(-1)
	for _, x := range c {
		top = max(top, x.logit)
	}
	s.probs = s.probs[:0]
	cut := 0.0
	if s.minP > 0 {
		cut = s.minP // relative to the top token's exp(0) = 1
	}
	var total float64
	for _, x := range c {
		p := math.Exp(x.logit - top)
		if p < cut {
			p = 0
		}
		s.probs = append(s.probs, p)
		total += p
	}
	r := s.rng.Float64() * total
	last := 0
	for i, p := range s.probs {
		if p == 0 {
			continue
		}
		last = i
		r -= p
		if r < 0 {
			return c[i].id
		}
	}
	return c[last].id
}

// penalized fills s.cand with the logits, those of tokens already in the
// sequence divided (if positive) or multiplied by the penalty, as in the
// CTRL paper and Hugging Face's RepetitionPenaltyLogitsProcessor.
func (s *sampler) penalized(logits []float32, history []int) {
	if s.seen == nil {
		s.seen = map[int]bool{}
	}
	clear(s.seen)
	for _, id := range history {
		s.seen[id] = true
	}
	s.cand = s.cand[:0]
	for id, x := range logits {
		v := float64(x)
		if s.seen[id] {
			if v > 0 {
				v /= s.penalty
			} else {
				v *= s.penalty
			}
		}
		s.cand = append(s.cand, candidate{id, v})
	}
}

// argmax returns the first index of the largest logit; NaNs never win.
func argmax(logits []float32) int {
	best := 0
	for i, x := range logits {
		if x > logits[best] || math.IsNaN(float64(logits[best])) {
			best = i
		}
	}
	return best
}
