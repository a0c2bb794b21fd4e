package openai

import (
	"math"
	"time"

	"github.com/aiassist/aiassist/engine/generate"
)

// dialect is what one generation route does its own way: how its body is
// read, and how its answer and stream are shaped.
type dialect interface {
	// path is the route's path, also its name.
	path() string
	// decode reads and checks the request body.
	decode(body []byte) (*textRequest, error)
	// response is the body of an answer that is not streamed.
	response(a *answer, res generate.Result) any
	// start is what a stream sends before any text.
	start(a *answer) []any
	// chunk is the event of one piece of text.
	chunk(a *answer, text string) any
	// end is what a stream sends after the text, before [DONE]: the
	// finish reason, and the usage where asked for.
	end(a *answer, res generate.Result) []any
}

// answer is what every dialect's answer says about its request.
type answer struct {
	id           string
	model        string
	created      int64
	start        time.Time
	includeUsage bool
	// cached says the answer came from the response cache.
	cached bool
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(res generate.Result) *usage {
	return &usage{res.PromptTokens, res.CompletionTokens, res.PromptTokens + res.CompletionTokens}
}

func milliseconds(d time.Duration) *float64 {
	ms := math.Round(float64(d.Microseconds())) / 1000
	return &ms
}

// seedGenerate is POST /v1/generate, the seed deployment guide's API.
type seedGenerate struct{}

// generateResponse is /v1/generate's answer, and with Text the chunk of
// its stream.
type generateResponse struct {
	ID           string   `json:"id"`
	Model        string   `json:"model"`
	Text         string   `json:"text"`
	FinishReason *string  `json:"finish_reason,omitempty"`
	Usage        *usage   `json:"usage,omitempty"`
	LatencyMS    *float64 `json:"latency_ms,omitempty"`
	// Cached is true on an answer from the response cache (the stream's
	// last event).
	Cached bool `json:"cached,omitempty"`
}

func (seedGenerate) path() string                             { return "/v1/generate" }
func (seedGenerate) decode(body []byte) (*textRequest, error) { return decodeGenerateRequest(body) }
func (seedGenerate) start(*answer) []any                      { return nil }

func (seedGenerate) response(a *answer, res generate.Result) any {
	finish := res.FinishReason
	return generateResponse{ID: "gen-" + a.id, Model: a.model, Text: res.Text, FinishReason: &finish, Usage: usageOf(res), LatencyMS: milliseconds(time.Since(a.start)), Cached: a.cached}
}

func (seedGenerate) chunk(a *answer, text string) any {
	return generateResponse{ID: "gen-" + a.id, Model: a.model, Text: text}
}

func (seedGenerate) end(a *answer, res generate.Result) []any {
	finish := res.FinishReason
	return []any{generateResponse{ID: "gen-" + a.id, Model: a.model, FinishReason: &finish, Usage: usageOf(res), LatencyMS: milliseconds(time.Since(a.start)), Cached: a.cached}}
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

func openAI(a *answer, idPrefix, object string, choices any, u *usage) openAIResponse {
	return openAIResponse{ID: idPrefix + a.id, Object: object, Created: a.created, Model: a.model, Choices: choices, Usage: u}
}

// completions is POST /v1/completions.
type completions struct{}

type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

func (completions) path() string                             { return "/v1/completions" }
func (completions) decode(body []byte) (*textRequest, error) { return decodeCompletionRequest(body) }
func (completions) start(*answer) []any                      { return nil }

func (completions) response(a *answer, res generate.Result) any {
	finish := res.FinishReason
	return openAI(a, "cmpl-", "text_completion", []completionChoice{{Text: res.Text, FinishReason: &finish}}, usageOf(res))
}

func (completions) chunk(a *answer, text string) any {
	return openAI(a, "cmpl-", "text_completion", []completionChoice{{Text: text}}, nil)
}

func (completions) end(a *answer, res generate.Result) []any {
	finish := res.FinishReason
	out := []any{openAI(a, "cmpl-", "text_completion", []completionChoice{{FinishReason: &finish}}, nil)}
	if a.includeUsage {
		out = append(out, openAI(a, "cmpl-", "text_completion", []completionChoice{}, usageOf(res)))
	}
	return out
}

// chat is POST /v1/chat/completions.
type chat struct{}

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

func (chat) path() string                             { return "/v1/chat/completions" }
func (chat) decode(body []byte) (*textRequest, error) { return decodeChatRequest(body) }

func (chat) response(a *answer, res generate.Result) any {
	finish := res.FinishReason
	return openAI(a, "chatcmpl-", "chat.completion", []chatChoice{{Message: &chatMessageOut{Role: "assistant", Content: res.Text}, FinishReason: &finish}}, usageOf(res))
}

// start sends the role first, alone, as OpenAI does.
func (chat) start(a *answer) []any {
	empty := ""
	return []any{openAI(a, "chatcmpl-", "chat.completion.chunk", []chatChoice{{Delta: &chatDelta{Role: "assistant", Content: &empty}}}, nil)}
}

func (chat) chunk(a *answer, text string) any {
	return openAI(a, "chatcmpl-", "chat.completion.chunk", []chatChoice{{Delta: &chatDelta{Content: &text}}}, nil)
}

func (chat) end(a *answer, res generate.Result) []any {
	finish := res.FinishReason
	out := []any{openAI(a, "chatcmpl-", "chat.completion.chunk", []chatChoice{{Delta: &chatDelta{}, FinishReason: &finish}}, nil)}
	if a.includeUsage {
		out = append(out, openAI(a, "chatcmpl-", "chat.completion.chunk", []chatChoice{}, usageOf(res)))
	}
	return out
}
