package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aiassist/aiassist/engine"
)

// Request is one generation.
type Request struct {
	Prompt string
	// MaxTokens is the most tokens to generate, at least 1. It is capped to
	// what is left of the context after the prompt.
	MaxTokens int
	// Temperature 0 is greedy decoding.
	Temperature float64
	// TopP keeps the most likely tokens whose probabilities add up to it;
	// 0 or 1 is off.
	TopP float64
	// TopK keeps the K most likely tokens; 0 is off.
	TopK int
	// MinP drops tokens less likely than MinP times the most likely; 0 is
	// off.
	MinP float64
	// RepetitionPenalty divides the logits of tokens already in the
	// sequence (Hugging Face's repetition_penalty); 0 or 1 is off.
	RepetitionPenalty float64
	// Seed makes the generation repeatable: the same prompt, parameters
	// and seed give the same text on the same model files, ONNX Runtime
	// and thread settings, however many other sequences run. Such a
	// sequence is decoded on its own, outside the decode batch; nil picks
	// a random seed and lets the sequence share the batch.
	Seed *uint64
	// Stop ends generation at the first of these strings in the output,
	// which is cut before it.
	Stop []string
	// AddSpecialTokens applies the tokenizer's post-processor (a BOS
	// token); prompts from a chat template usually have it already.
	AddSpecialTokens bool
}

// Chunk is text ready to stream: never half a UTF-8 character and never
// the start of a stop sequence that may still complete.
type Chunk struct {
	Text string
}

// Result is a finished generation.
type Result struct {
	Text string
	// FinishReason is "stop" (an end-of-sequence token or a stop sequence)
	// or "length" (MaxTokens or the context ran out).
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	// TimeToFirstToken runs from the call, queueing included, to the first
	// generated token.
	TimeToFirstToken time.Duration
	// QueueWait is how long the request waited for a sequence slot.
	QueueWait time.Duration
}

// Generate tokenizes req.Prompt, generates and returns the text. emit, if
// not nil, receives the text as it is ready; the chunks joined equal
// Result.Text. An error from emit stops the generation and is returned.
// Bad parameters, a prompt too long for the context and ids the model does
// not know give errors wrapping engine.ErrInvalidInput; a full queue a
// *engine.LimitError (wrapping engine.ErrQueueFull); a generation that by
// the measured service time would end after ctx's deadline an
// *engine.AdmissionError, at once; a ctx that ends while waiting for a
// sequence slot a *engine.DeadlineError (wrapping engine.ErrExpired and
// ctx's cause), and one that ends while generating a *engine.DeadlineError
// with Ran (wrapping engine.ErrStopped and ctx's cause), the sequence
// stopping at its next token; a closed model engine.ErrClosed.
func (m *Model) Generate(ctx context.Context, req Request, emit func(Chunk) error) (Result, error) {
	if err := req.validate(); err != nil {
		return Result{}, err
	}
	ids := m.tok.Encode(req.Prompt, req.AddSpecialTokens)
	dec := m.tok.NewStreamDecoder(true)
	stops := newStopper(req.Stop)
	var text strings.Builder
	release := func(s string) error {
		if s == "" {
			return nil
		}
		text.WriteString(s)
		if emit != nil {
			return emit(Chunk{Text: s})
		}
		return nil
	}
	stopped := false
	res, err := m.run(ctx, ids, req, func(id int) (bool, error) {
		if m.eos[id] {
			return false, nil
		}
		out, hit := stops.add(dec.Add(id))
		if err := release(out); err != nil {
			return true, err
		}
		stopped = hit
		return hit, nil
	})
	if err != nil {
		return res, err
	}
	if stopped {
		res.FinishReason = "stop"
	} else {
		out, hit := stops.add(dec.Flush())
		if hit {
			res.FinishReason = "stop"
		} else {
			out += stops.flush()
		}
		if err := release(out); err != nil {
			return res, err
		}
	}
	res.Text = text.String()
	return res, nil
}

// GenerateIDs generates from token ids, for a warm-up and for tests.
// emitID, if not nil, receives every generated id, an end-of-sequence id
// included. req.Prompt and req.Stop are ignored.
func (m *Model) GenerateIDs(ctx context.Context, promptIDs []int, req Request, emitID func(int) error) (Result, error) {
	req.Stop = nil
	if err := req.validate(); err != nil {
		return Result{}, err
	}
	return m.run(ctx, promptIDs, req, func(id int) (bool, error) {
		if emitID != nil {
			return false, emitID(id)
		}
		return false, nil
	})
}

func (r *Request) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", engine.ErrInvalidInput, fmt.Sprintf(format, args...))
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case r.MaxTokens < 1:
		return bad("max_tokens must be at least 1, got %d", r.MaxTokens)
	case !finite(r.Temperature) || r.Temperature < 0:
		return bad("temperature must be 0 or more, got %v", r.Temperature)
	case !finite(r.TopP) || r.TopP < 0 || r.TopP > 1:
		return bad("top_p must be between 0 and 1, got %v", r.TopP)
	case r.TopK < 0:
		return bad("top_k must be 0 or more, got %d", r.TopK)
	case !finite(r.MinP) || r.MinP < 0 || r.MinP > 1:
		return bad("min_p must be between 0 and 1, got %v", r.MinP)
	case !finite(r.RepetitionPenalty) || r.RepetitionPenalty < 0:
		return bad("repetition_penalty must be more than 0, got %v", r.RepetitionPenalty)
	}
	return nil
}

// run admits the sequence, hands it to a lane and passes each generated
// id to onToken until it asks to stop, the lane ends the sequence or ctx
// ends.
func (m *Model) run(ctx context.Context, ids []int, req Request, onToken func(id int) (stop bool, err error)) (Result, error) {
	start := m.opts.Clock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Result{}, fmt.Errorf("model %q: %w", m.opts.Name, engine.ErrClosed)
	}
	m.running.Add(1)
	m.mu.Unlock()
	defer m.running.Done()

	if len(ids) == 0 {
		if m.cfg.bos < 0 {
			return Result{}, fmt.Errorf("%w: the prompt is empty", engine.ErrInvalidInput)
		}
		ids = []int{m.cfg.bos}
	}
	for i, id := range ids {
		if id < 0 || id >= m.vocab {
			return Result{}, fmt.Errorf("%w: prompt token %d has id %d, outside model %q's vocabulary of %d ids (does the tokenizer belong to this model?)", engine.ErrInvalidInput, i, id, m.opts.Name, m.vocab)
		}
	}
	maxNew := req.MaxTokens
	if len(ids) >= m.context {
		if m.opts.Truncate != "left" {
			return Result{}, fmt.Errorf("%w: the prompt has %d tokens but model %q has a context of %d tokens, which must also hold at least one generated token; shorten the prompt", engine.ErrInvalidInput, len(ids), m.opts.Name, m.context)
		}
	}
	// maxNew > m.context-len(ids), not len(ids)+maxNew > m.context: a
	// client's max_tokens near the int limit would overflow the sum.
	if maxNew > m.context-len(ids) && m.opts.Truncate == "left" && len(ids) > m.context/2 {
		// Keep room for the requested tokens, but never drop more than
		// half the context of prompt for them.
		keep := max(m.context-maxNew, m.context/2, 1)
		ids = ids[len(ids)-keep:]
	}
	maxNew = min(maxNew, m.context-len(ids))

	seed := rand.Uint64()
	if req.Seed != nil {
		seed = *req.Seed
	}
	s := &seq{
		ids:     append(make([]int, 0, len(ids)+maxNew), ids...),
		prompt:  len(ids),
		maxNew:  maxNew,
		sampler: newSampler(&req, seed),
		alone:   req.Seed != nil,
		notify:  make(chan struct{}, 1),
		id:      int(m.seqs.Add(1)),
	}
	if err := m.checkDeadline(ctx, maxNew); err != nil {
		return Result{}, err
	}
	queued := m.opts.Clock()
	if err := m.admit(ctx); err != nil {
		return Result{}, err
	}
	admitted := m.opts.Clock()
	observe(m.met.queueWait, admitted.Sub(queued))
	if m.met.prompt != nil {
		m.met.prompt.Add(len(ids))
	}
	// The least loaded lane takes the sequence.
	m.assign(s)

	res := Result{PromptTokens: len(ids), QueueWait: admitted.Sub(queued)}
	var buf []int
	last := start
	for {
		select {
		case <-s.notify:
		case <-ctx.Done():
			s.cancelled.Store(true)
			return res, m.ended(ctx)
		}
		var done bool
		var finish string
		var err error
		buf, done, finish, err = s.take(buf)
		for _, id := range buf {
			now := m.opts.Clock()
			if res.CompletionTokens == 0 {
				res.TimeToFirstToken = now.Sub(start)
				observe(m.met.ttft, res.TimeToFirstToken)
			} else {
				// Tokens taken together measure one gap and then none:
				// the average is still the time a token takes.
				m.token.Observe(now.Sub(last))
				observe(m.met.itl, now.Sub(last))
			}
			last = now
			res.CompletionTokens++
			if m.met.generated != nil {
				m.met.generated.Inc()
			}
			stop, err := onToken(id)
			if err != nil || stop {
				s.cancelled.Store(true)
				res.FinishReason = "stop"
				switch {
				case err == nil:
					m.whole.Observe(m.opts.Clock().Sub(admitted))
				case ctx.Err() != nil && errors.Is(err, context.Cause(ctx)):
					// emit gave up because ctx ended.
					res.FinishReason = ""
					err = m.ended(ctx)
				}
				return res, err
			}
			if ctx.Err() != nil {
				s.cancelled.Store(true)
				return res, m.ended(ctx)
			}
		}
		if done {
			if err != nil {
				if errors.Is(err, errCancelled) && ctx.Err() != nil {
					return res, m.ended(ctx)
				}
				return res, err
			}
			m.whole.Observe(m.opts.Clock().Sub(admitted))
			res.FinishReason = finish
			return res, nil
		}
	}
}

// ended is the error of a generation whose ctx ended while it ran.
func (m *Model) ended(ctx context.Context) error {
	return &engine.DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx), Ran: true}
}

// checkDeadline refuses a generation that, by the model's measured
// service time, would end after ctx's deadline. Its own time is the
// shorter of maxNew tokens at the measured time per token and the measured
// time of a whole generation (most end before max_tokens, at an
// end-of-sequence token or a stop sequence). When every slot is taken, the
// generations waiting ahead count in whole rounds of max_sequences, rounded
// down, each a whole generation long; what running sequences still need
// is left out. So the estimate leans low, and before MinSamples tokens and
// generations are measured nothing is refused.
func (m *Model) checkDeadline(ctx context.Context, maxNew int) error {
	if _, ok := ctx.Deadline(); !ok {
		return nil
	}
	token, ok := m.token.Estimate()
	if !ok {
		return nil
	}
	whole, ok := m.whole.Estimate()
	if !ok {
		return nil
	}
	own := min(whole, time.Duration(maxNew)*token)
	var wait time.Duration
	if len(m.slots) == cap(m.slots) {
		m.mu.Lock()
		waiting := m.waiting
		m.mu.Unlock()
		wait = time.Duration(waiting/m.opts.MaxSequences) * whole
	}
	err := engine.CheckDeadline(ctx, m.opts.Name, wait, own)
	if err != nil && m.met.refused != nil {
		m.met.refused.Inc()
	}
	return err
}

// admit takes a sequence slot, waiting in the bounded queue if all are
// taken. A full queue is a *engine.LimitError; a ctx that ends while
// waiting a *engine.DeadlineError, as for a tensor model's queue.
func (m *Model) admit(ctx context.Context) error {
	select {
	case m.slots <- struct{}{}:
		return nil
	default:
	}
	m.mu.Lock()
	if m.waiting >= m.opts.MaxQueue {
		m.mu.Unlock()
		return &engine.LimitError{Model: m.opts.Name, Setting: "max_queue", Limit: max(m.opts.MaxQueue, 0),
			Detail: fmt.Sprintf("%d generations running (max_sequences) and %d waiting", m.opts.MaxSequences, max(m.opts.MaxQueue, 0))}
	}
	m.waiting++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.waiting--
		m.mu.Unlock()
	}()
	select {
	case m.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &engine.DeadlineError{Model: m.opts.Name, Cause: context.Cause(ctx)}
	}
}
