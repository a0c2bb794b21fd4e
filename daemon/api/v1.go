package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
)

// The /v1 routes: the seed's /v1/generate and the OpenAI-compatible ones.
const (
	routeGenerate    = "/v1/generate"
	routeCompletions = "/v1/completions"
	routeChat        = "/v1/chat/completions"
	routeModels      = "/v1/models"
)

// streamBuffer is how many chunks a generation may run ahead of a stream
// that is slow to write them.
const streamBuffer = 8

func (s *Server) routeV1(ctx *fasthttp.RequestCtx, st *State, c *call, path string) error {
	switch path {
	case routeGenerate, routeCompletions, routeChat:
		c.route = path
		if err := allow(ctx, "POST"); err != nil {
			return err
		}
		return s.generateText(ctx, st, c)
	case routeModels:
		c.route = path
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		return writeJSON(ctx, 200, s.modelList(st))
	}
	if name, ok := strings.CutPrefix(path, routeModels+"/"); ok {
		c.route = routeModels + "/{name}"
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		for _, m := range s.modelList(st).Data {
			if m.ID == name {
				c.model = name
				return writeJSON(ctx, 200, m)
			}
		}
		return modelNotFound(name)
	}
	c.route = "other"
	return newError(fasthttp.StatusNotFound, "not_found_error", "not_found", "no route for "+strconv.Quote(path))
}

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Kind is "causal-lm" (served by the /v1 routes) or "tensor" (served
	// by /v2/models/{name}/infer).
	Kind string `json:"kind"`
	// MaxModelLen is a causal-lm model's context length, as vLLM reports
	// it.
	MaxModelLen int `json:"max_model_len,omitempty"`
}

// modelList lists every served model, as OpenAI's GET /v1/models does.
func (s *Server) modelList(st *State) modelList {
	list := modelList{Object: "list", Data: []modelObject{}}
	for name, m := range st.Generators {
		list.Data = append(list.Data, modelObject{ID: name, Object: "model", Created: s.started.Unix(), OwnedBy: "aiassist", Kind: "causal-lm", MaxModelLen: m.ContextLength()})
	}
	for name := range st.Models {
		list.Data = append(list.Data, modelObject{ID: name, Object: "model", Created: s.started.Unix(), OwnedBy: "aiassist", Kind: "tensor"})
	}
	slices.SortFunc(list.Data, func(a, b modelObject) int { return strings.Compare(a.ID, b.ID) })
	return list
}

// generator returns the model a request names, or the default one.
func (st *State) generator(name string) (string, *generate.Model, error) {
	if name == "" {
		if st.DefaultModel == "" {
			return "", nil, paramError("model", `the request names no model and none is the default; send "model" (GET /v1/models lists them) or set default_model in the config`)
		}
		name = st.DefaultModel
	}
	if m := st.Generators[name]; m != nil {
		return name, m, nil
	}
	if st.Models[name] != nil {
		return "", nil, paramError("model", fmt.Sprintf("model %q is a tensor model, which does not generate text; use POST /v2/models/%s/infer", name, name))
	}
	e := modelNotFound(name)
	e.Param = "model"
	return "", nil, e
}

// generateText serves the three generation routes: decode, pick the model,
// then answer at once or stream.
func (s *Server) generateText(ctx *fasthttp.RequestCtx, st *State, c *call) error {
	var req *textRequest
	var err error
	switch c.route {
	case routeGenerate:
		req, err = decodeGenerateRequest(ctx.Request.Body())
	case routeCompletions:
		req, err = decodeCompletionRequest(ctx.Request.Body())
	case routeChat:
		req, err = decodeChatRequest(ctx.Request.Body())
	}
	if err != nil {
		return err
	}
	name, m, err := st.generator(req.Model)
	if err != nil {
		return err
	}
	c.model = name
	p := req.Params
	p.Prompt = req.Prompt
	if req.Messages != nil {
		if p.Prompt, err = m.ApplyChatTemplate(req.Messages, true); err != nil {
			return err
		}
	}
	if p.MaxTokens == 0 {
		// Generate caps it to what the prompt leaves of the context.
		p.MaxTokens = m.ContextLength()
	}
	f := &textFormat{route: c.route, id: c.id, model: name, created: time.Now().Unix(), includeUsage: req.IncludeUsage}
	log := &genLog{st: st, c: c, prompt: p.Prompt}

	if !req.Stream {
		gctx, cancel := context.WithTimeout(context.Background(), st.RequestTimeout)
		defer cancel()
		res, err := m.Generate(gctx, p, nil)
		log.result(res, res.Text)
		if err != nil {
			return generationError(err, st)
		}
		return writeJSON(ctx, 200, f.response(res, time.Since(c.start)))
	}

	j := startGeneration(m, p, st.RequestTimeout)
	// Wait for the first text, so that a request refused by the model (a
	// prompt too long, a full queue) gets its HTTP status rather than an
	// error inside a 200 stream.
	first, ok := <-j.chunks
	if !ok && j.err != nil {
		j.cancel()
		log.result(j.res, "")
		return generationError(j.err, st)
	}
	ctx.SetStatusCode(200)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	// Proxies such as nginx would otherwise hold the chunks back.
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	c.stream = func(w *sseWriter) {
		defer j.cancel()
		var sent strings.Builder
		send := func(text string) {
			if st.LogPrompts {
				sent.WriteString(text)
			}
			w.event(f.chunk(text))
		}
		for _, ev := range f.start() {
			w.event(ev)
		}
		if ok {
			send(first)
			if s.streamHook != nil {
				s.streamHook()
			}
		}
		for text := range j.chunks {
			if w.err != nil {
				// The client is gone: stop the generation, then let
				// it wind down.
				j.cancel()
				continue
			}
			send(text)
			if s.streamHook != nil {
				s.streamHook()
			}
		}
		log.result(j.res, sent.String())
		switch {
		case w.err != nil:
			c.reason = "client_disconnected"
		case j.err != nil:
			e := generationError(j.err, st)
			c.reason = e.Code
			var b errorBody
			b.Error.Message, b.Error.Type, b.Error.Code = e.Message, e.Type, e.Code
			w.event(b)
		default:
			for _, ev := range f.end(j.res, time.Since(c.start)) {
				w.event(ev)
			}
			w.done()
		}
	}
	return nil
}

// generation is a generation running for a stream. chunks is closed when
// Generate has returned; res and err are set before.
type generation struct {
	chunks chan string
	res    generate.Result
	err    error
	cancel context.CancelFunc
}

func startGeneration(m *generate.Model, p generate.Request, timeout time.Duration) *generation {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	g := &generation{chunks: make(chan string, streamBuffer), cancel: cancel}
	go func() {
		defer close(g.chunks)
		// This goroutine is not the handler's: without this a panic in
		// tokenizing or decoding would end the process.
		defer func() {
			if r := recover(); r != nil {
				g.err = fmt.Errorf("internal error in the generation: %v", r)
			}
		}()
		g.res, g.err = m.Generate(ctx, p, func(ch generate.Chunk) error {
			select {
			case g.chunks <- ch.Text:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return g
}

// generationError maps an error of Generate to the response; the deadline
// and a full queue get messages about generation's own settings.
func generationError(err error, st *State) *Error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return newError(fasthttp.StatusGatewayTimeout, "timeout_error", "deadline_exceeded",
			fmt.Sprintf("the generation did not finish within server.request_timeout (%s); ask for fewer max_tokens or raise server.request_timeout", st.RequestTimeout))
	case errors.Is(err, engine.ErrQueueFull):
		e := newError(fasthttp.StatusServiceUnavailable, "overloaded_error", "queue_full", "the model is generating max_sequences texts and max_queue more are waiting; retry later or raise max_sequences or max_queue: "+err.Error())
		e.RetryAfter = 1
		return e
	}
	return errorFrom(err)
}

// genLog puts what a generation did into the request's access log line.
type genLog struct {
	st     *State
	c      *call
	prompt string
}

func (l *genLog) result(res generate.Result, text string) {
	l.c.extra = append(l.c.extra,
		slog.Int("prompt_tokens", res.PromptTokens),
		slog.Int("completion_tokens", res.CompletionTokens),
		slog.String("finish_reason", res.FinishReason),
		slog.Float64("ttft_seconds", res.TimeToFirstToken.Seconds()),
	)
	// The seed's Logstash config renames these to user_query and
	// model_answer; they are personal data, so only when asked.
	if l.st.LogPrompts {
		l.c.extra = append(l.c.extra, slog.String("prompt", l.prompt), slog.String("response", text))
	}
}

// textFormat shapes a generation's answer for its route.
type textFormat struct {
	route        string
	id           string
	model        string
	created      int64
	includeUsage bool
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(res generate.Result) *usage {
	return &usage{res.PromptTokens, res.CompletionTokens, res.PromptTokens + res.CompletionTokens}
}

// generateResponse is /v1/generate's answer, and with Text the chunk of
// its stream.
type generateResponse struct {
	ID           string   `json:"id"`
	Model        string   `json:"model"`
	Text         string   `json:"text"`
	FinishReason *string  `json:"finish_reason,omitempty"`
	Usage        *usage   `json:"usage,omitempty"`
	LatencyMS    *float64 `json:"latency_ms,omitempty"`
}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type chatMessageOut struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     any             `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// openAIResponse is the body of /v1/completions and /v1/chat/completions
// and of their stream chunks; Choices holds completionChoice or
// chatChoice values.
type openAIResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices any    `json:"choices"`
	Usage   *usage `json:"usage,omitempty"`
}

func (f *textFormat) openAI(object string, choices any, u *usage) openAIResponse {
	prefix := "cmpl-"
	if f.route == routeChat {
		prefix = "chatcmpl-"
	}
	return openAIResponse{ID: prefix + f.id, Object: object, Created: f.created, Model: f.model, Choices: choices, Usage: u}
}

func milliseconds(d time.Duration) *float64 {
	ms := math.Round(float64(d.Microseconds())) / 1000
	return &ms
}

// response is the body of an answer that is not streamed.
func (f *textFormat) response(res generate.Result, latency time.Duration) any {
	finish := res.FinishReason
	switch f.route {
	case routeGenerate:
		return generateResponse{ID: "gen-" + f.id, Model: f.model, Text: res.Text, FinishReason: &finish, Usage: usageOf(res), LatencyMS: milliseconds(latency)}
	case routeCompletions:
		return f.openAI("text_completion", []completionChoice{{Text: res.Text, FinishReason: &finish}}, usageOf(res))
	}
	return f.openAI("chat.completion", []chatChoice{{Message: &chatMessageOut{Role: "assistant", Content: res.Text}, FinishReason: &finish}}, usageOf(res))
}

// start is what a stream sends before any text: chat's role.
func (f *textFormat) start() []any {
	if f.route != routeChat {
		return nil
	}
	empty := ""
	return []any{f.openAI("chat.completion.chunk", []chatChoice{{Delta: &chatDelta{Role: "assistant", Content: &empty}}}, nil)}
}

// chunk is the event of one piece of text.
func (f *textFormat) chunk(text string) any {
	switch f.route {
	case routeGenerate:
		return generateResponse{ID: "gen-" + f.id, Model: f.model, Text: text}
	case routeCompletions:
		return f.openAI("text_completion", []completionChoice{{Text: text}}, nil)
	}
	return f.openAI("chat.completion.chunk", []chatChoice{{Delta: &chatDelta{Content: &text}}}, nil)
}

// end is what a stream sends after the text, before [DONE]: the finish
// reason, and the usage where asked for.
func (f *textFormat) end(res generate.Result, latency time.Duration) []any {
	finish := res.FinishReason
	var out []any
	switch f.route {
	case routeGenerate:
		return []any{generateResponse{ID: "gen-" + f.id, Model: f.model, FinishReason: &finish, Usage: usageOf(res), LatencyMS: milliseconds(latency)}}
	case routeCompletions:
		out = append(out, f.openAI("text_completion", []completionChoice{{FinishReason: &finish}}, nil))
		if f.includeUsage {
			out = append(out, f.openAI("text_completion", []completionChoice{}, usageOf(res)))
		}
	default:
		out = append(out, f.openAI("chat.completion.chunk", []chatChoice{{Delta: &chatDelta{}, FinishReason: &finish}}, nil))
		if f.includeUsage {
			out = append(out, f.openAI("chat.completion.chunk", []chatChoice{}, usageOf(res)))
		}
	}
	return out
}
