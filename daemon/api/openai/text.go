// Package openai serves the /v1 routes for causal-lm models: the
// OpenAI-compatible /v1/completions, /v1/chat/completions and /v1/models,
// and the seed API's /v1/generate, answered at once or streamed as
// server-sent events. Each generation route is a dialect: how its body is
// read and how its answer is shaped; the way a request goes is the same
// for all three. /v1/embeddings serves the embedding models
// (embeddings.go).
package openai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/engine/generate"
)

// streamBuffer is how many chunks a generation may run ahead of a stream
// that is slow to write them.
const streamBuffer = 8

// Routes are the /v1 routes. created is the "created" time of the listed
// models.
func Routes(created time.Time) []*route.Route {
	var routes []*route.Route
	for _, d := range []dialect{seedGenerate{}, completions{}, chat{}} {
		routes = append(routes, &route.Route{Name: d.path(), Method: "POST", Resolve: func(r *route.Request) (route.Handler, error) {
			return resolveText(d, r)
		}})
	}
	models := modelRoutes{created: created.Unix()}
	return append(routes,
		&route.Route{Name: "/v1/embeddings", Method: "POST", Resolve: resolveEmbeddings},
		&route.Route{Name: "/v1/models", Method: "GET", Resolve: models.resolveList},
		&route.Route{Name: "/v1/models/{name}", Method: "GET", Paths: []string{"/v1/models/{name...}"}, Resolve: models.resolveOne},
	)
}

// resolveText reads a generation request and picks its model; nothing
// runs yet.
func resolveText(d dialect, r *route.Request) (route.Handler, error) {
	req, err := d.decode(r.Ctx.Request.Body())
	if err != nil {
		return nil, err
	}
	name, m, err := generator(r.State, req.Model)
	if err != nil {
		return nil, err
	}
	r.Model = name
	return &textCall{d: d, req: req, m: m}, nil
}

// generator returns the model a request names, or the default one.
func generator(st *route.State, name string) (string, *generate.Model, error) {
	if name == "" {
		if st.DefaultModel == "" {
			return "", nil, route.ParamError("model", `the request names no model and none is the default; send "model" (GET /v1/models lists them) or set default_model in the config`)
		}
		name = st.DefaultModel
	}
	if m := st.Generators[name]; m != nil {
		return name, m, nil
	}
	if st.Embedders[name] != nil {
		return "", nil, route.ParamError("model", fmt.Sprintf("model %q is an embedding model, which does not generate text; it is served on POST /v1/embeddings", name))
	}
	if st.Models[name] != nil {
		// A served name is a config name, short and plain.
		return "", nil, route.ParamError("model", fmt.Sprintf("model %q is a tensor model, which does not generate text; it is served on POST /v2/models/%s/infer", name, name))
	}
	e := route.ModelNotFound(name, "GET /v1/models lists the models")
	e.Param = "model"
	return "", nil, e
}

// textCall is one generation request, decoded, with its model.
type textCall struct {
	d   dialect
	req *textRequest
	m   *generate.Model
}

// Serve runs the generation: answered at once, or started and handed to
// the server as a stream.
func (c *textCall) Serve(r *route.Request) (route.Stream, error) {
	ctx, cancel, err := route.Deadline(r)
	if err != nil {
		return nil, err
	}
	// The client may leave while its answer is made; then the work stops
	// at its next token.
	ctx, leave := context.WithCancelCause(ctx)
	stopAll := func() { leave(nil); cancel() }
	p := c.req.Params
	p.Prompt = c.req.Prompt
	if c.req.Messages != nil {
		var err error
		if p.Prompt, err = c.m.ApplyChatTemplate(c.req.Messages, true); err != nil {
			stopAll()
			return nil, err
		}
	}
	if n := c.m.ContextLength(); c.req.ExplicitMaxTokens && p.MaxTokens > n {
		// As OpenAI and vLLM answer: silently generating less than asked
		// hides the mistake.
		stopAll()
		return nil, route.ParamError("max_tokens", fmt.Sprintf("max_tokens is %d, but model %s has a context of %d tokens (prompt and completion together); ask for at most %d", p.MaxTokens, route.Quote(r.Model), n, n-1))
	}
	if p.MaxTokens == 0 {
		// Generate caps it to what the prompt leaves of the context.
		p.MaxTokens = c.m.ContextLength()
	}
	a := &answer{id: r.ID, model: r.Model, created: time.Now().Unix(), start: r.Start, includeUsage: c.req.IncludeUsage}
	log := &genLog{r: r, prompt: p.Prompt}
	cu := useCache(r, cache.KindText, repeatable(p), c.req.NoCache, textKey(p))
	if e := cu.get(r); e != nil {
		stopAll()
		return c.replay(r, a, log, e)
	}

	if !c.req.Stream {
		defer stopAll()
		emit, chunks := cu.collect()
		stop := watchHangup(r.Ctx.Conn(), hangupEvery, func() { leave(route.ErrClientGone) })
		res, err := c.m.Generate(ctx, p, emit)
		stop()
		log.result(res, res.Text)
		if err != nil {
			return nil, gone(r, err)
		}
		if chunks != nil {
			cu.put(toCache(res, *chunks))
		}
		return nil, route.WriteJSON(r.Ctx, 200, c.d.response(a, res))
	}

	g := startGeneration(ctx, stopAll, c.m, p)
	// Wait for the first text, so that a request refused by the model (a
	// prompt too long, a full queue) gets its HTTP status rather than an
	// error inside a 200 stream. Until the stream writes, only the
	// connection says whether the client is still there.
	stop := watchHangup(r.Ctx.Conn(), hangupEvery, func() { leave(route.ErrClientGone) })
	first, ok := <-g.chunks
	stop()
	if !ok && g.err != nil {
		g.cancel()
		log.result(g.res, "")
		return nil, gone(r, g.err)
	}
	startStream(r)
	return &textStream{r: r, d: c.d, a: a, g: g, first: first, hasFirst: ok, log: log, cache: cu}, nil
}

// startStream sets the status and headers of an event stream.
func startStream(r *route.Request) {
	rc := r.Ctx
	rc.SetStatusCode(200)
	rc.SetContentType("text/event-stream")
	rc.Response.Header.Set("Cache-Control", "no-cache")
	// Proxies such as nginx would otherwise hold the chunks back.
	rc.Response.Header.Set("X-Accel-Buffering", "no")
}

// replay answers from the cache: the stored result, shaped as the route
// shapes a fresh one, and streamed when asked, chunk for chunk as the
// generation was; logged, counted and charged as one.
func (c *textCall) replay(r *route.Request, a *answer, log *genLog, e *cache.Entry) (route.Stream, error) {
	a.cached = true
	res := fromCache(e)
	if !c.req.Stream {
		log.result(res, res.Text)
		return nil, route.WriteJSON(r.Ctx, 200, c.d.response(a, res))
	}
	// A finished generation: its chunks queued, its result set.
	g := &generation{chunks: make(chan string, len(e.Chunks)), res: res, cancel: func() {}}
	for _, ch := range e.Chunks {
		g.chunks <- ch
	}
	close(g.chunks)
	first, ok := <-g.chunks
	startStream(r)
	return &textStream{r: r, d: c.d, a: a, g: g, first: first, hasFirst: ok, log: log}, nil
}

// textStream writes a running generation as events.
type textStream struct {
	r        *route.Request
	d        dialect
	a        *answer
	g        *generation
	first    string
	hasFirst bool
	log      *genLog
	// cache stores the answer once the stream has sent all of it; nil
	// for none.
	cache *cacheUse
}

func (s *textStream) Write(w *route.SSE) {
	defer s.g.cancel()
	var sent strings.Builder
	var chunks []string
	send := func(text string) {
		if s.r.State.Prompts != nil {
			sent.WriteString(text)
		}
		if s.cache != nil {
			chunks = append(chunks, text)
		}
		w.Event(s.d.chunk(s.a, text))
	}
	for _, ev := range s.d.start(s.a) {
		w.Event(ev)
	}
	if s.hasFirst {
		send(s.first)
	}
	for text := range s.g.chunks {
		if w.Err() != nil {
			// The client is gone: stop the generation, then let it
			// wind down.
			s.g.cancel()
			continue
		}
		send(text)
	}
	s.log.result(s.g.res, sent.String())
	switch {
	case w.Err() != nil:
		s.r.Reason = "client_disconnected"
	case s.g.err != nil:
		e := route.ErrorFrom(s.g.err, s.r.State)
		s.r.Reason = e.Code
		w.Error(e)
	default:
		for _, ev := range s.d.end(s.a, s.g.res) {
			w.Event(ev)
		}
		w.Done()
		if w.Err() == nil {
			s.cache.put(toCache(s.g.res, chunks))
		}
	}
}

// generation is a generation running for a stream. chunks is closed when
// Generate has returned; res and err are set before.
type generation struct {
	chunks chan string
	res    generate.Result
	err    error
	cancel context.CancelFunc
}

// startGeneration runs the generation under ctx; cancel ends ctx.
func startGeneration(ctx context.Context, cancel context.CancelFunc, m *generate.Model, p generate.Request) *generation {
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
			// The lane decodes ahead of a slow stream: once the
			// deadline has passed, what it made is not sent.
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			select {
			case g.chunks <- ch.Text:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
	}()
	return g
}

// gone answers nothing to a client that left: fasthttp is told to close
// the connection without writing the response, which the access log and
// the metrics still record, as 499 client_disconnected.
func gone(r *route.Request, err error) error {
	if errors.Is(err, route.ErrClientGone) {
		r.Ctx.HijackSetNoResponse(true)
		r.Ctx.Hijack(func(net.Conn) {})
	}
	return err
}

// genLog puts what a generation did into the request's access log line.
type genLog struct {
	r      *route.Request
	prompt string
}

func (l *genLog) result(res generate.Result, text string) {
	// What the request's limit class is charged with.
	l.r.TokensIn, l.r.TokensOut = res.PromptTokens, res.CompletionTokens
	l.r.QueueWait = res.QueueWait
	l.r.Extra = append(l.r.Extra,
		slog.Int("prompt_tokens", res.PromptTokens),
		slog.Int("completion_tokens", res.CompletionTokens),
		slog.String("finish_reason", res.FinishReason),
		slog.Float64("ttft_seconds", res.TimeToFirstToken.Seconds()),
	)
	// The seed's Logstash config renames these to user_query and
	// model_answer; they are personal data, so only when asked.
	if l.r.State.Prompts != nil {
		l.r.Extra = append(l.r.Extra, l.r.State.Prompts.Attrs(l.prompt, text)...)
	}
}

// modelRoutes serve the model list: the causal-lm models, then the
// embedding models, which are what the /v1 routes serve; each says its
// kind, so that a client offering models for chat can leave the
// embedding ones out. Tensor models are listed by the KServe repository
// index.
type modelRoutes struct{ created int64 }

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Kind is "causal-lm" or "embedding", the kinds the /v1 routes serve.
	Kind string `json:"kind"`
	// MaxModelLen is the model's context length, as vLLM reports it (for
	// an embedding model, the tokens of one row).
	MaxModelLen int `json:"max_model_len,omitempty"`
}

func (mr modelRoutes) object(name string, m *generate.Model) modelObject {
	return modelObject{ID: name, Object: "model", Created: mr.created, OwnedBy: "aiassist", Kind: "causal-lm", MaxModelLen: m.ContextLength()}
}

// resolveList serves GET /v1/models: the default model first, as the
// one clients should pick, then the rest by name.
func (mr modelRoutes) resolveList(*route.Request) (route.Handler, error) {
	return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
		st := r.State
		list := modelList{Object: "list", Data: make([]modelObject, 0, len(st.Generators))}
		for _, name := range sortedNames(st.Generators) {
			if name != st.DefaultModel {
				list.Data = append(list.Data, mr.object(name, st.Generators[name]))
			}
		}
		if m := st.Generators[st.DefaultModel]; m != nil {
			list.Data = append([]modelObject{mr.object(st.DefaultModel, m)}, list.Data...)
		}
		list.Data = append(list.Data, mr.embeddingObjects(st)...)
		return nil, route.WriteJSON(r.Ctx, 200, list)
	}), nil
}

// resolveOne serves GET /v1/models/{name}.
func (mr modelRoutes) resolveOne(r *route.Request) (route.Handler, error) {
	name := r.Param("name")
	m := r.State.Generators[name]
	if e := r.State.Embedders[name]; e != nil {
		r.Model = name
		return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
			return nil, route.WriteJSON(r.Ctx, 200, mr.embeddingObject(name, e))
		}), nil
	}
	switch {
	case m == nil && r.State.Models[name] != nil:
		r.Model = name
		return nil, route.NewError(fasthttp.StatusNotFound, "not_found_error", "model_not_found",
			fmt.Sprintf("model %q is a tensor model, served on POST /v2/models/%s/infer, not by the /v1 routes; POST /v2/repository/index lists the tensor models", name, name))
	case m == nil:
		return nil, route.ModelNotFound(name, "GET /v1/models lists the models")
	}
	r.Model = name
	return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
		return nil, route.WriteJSON(r.Ctx, 200, mr.object(name, m))
	}), nil
}

func sortedNames(m map[string]*generate.Model) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
