package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/engine/generate"
)

// textRequest is a /v1 generation request, decoded and checked.
type textRequest struct {
	Model string
	// Prompt is the text of /v1/generate and /v1/completions.
	Prompt string
	// Messages are the turns of /v1/chat/completions.
	Messages []generate.Message
	// Params are the sampling settings; MaxTokens 0 (chat without
	// max_tokens) means up to the end of the context. Prompt is filled in
	// by the handler.
	Params       generate.Request
	Stream       bool
	IncludeUsage bool
	// ExplicitMaxTokens says the request set max_tokens itself (rather
	// than taking the route's default), so more than the context holds
	// is refused rather than cut.
	ExplicitMaxTokens bool
	// NoCache is "cache": false: the answer is neither read from the
	// response cache nor stored in it.
	NoCache bool
}

// Defaults of the routes: /v1/generate keeps the seed API's, the OpenAI
// routes OpenAI's.
const (
	generateMaxTokens   = 200
	generateTemperature = 0.7
	openAIMaxTokens     = 16
	openAITemperature   = 1
	// maxStops bounds the stop sequences of a request; OpenAI takes 4.
	maxStops = 16
	// maxStopBytes bounds one stop sequence.
	maxStopBytes = 256
)

// sampling are the fields of every generation route.
type sampling struct {
	Model             string          `json:"model"`
	MaxTokens         *int            `json:"max_tokens"`
	Temperature       *float64        `json:"temperature"`
	TopP              *float64        `json:"top_p"`
	TopK              *int            `json:"top_k"`
	MinP              *float64        `json:"min_p"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
	Stop              json.RawMessage `json:"stop"`
	Seed              json.RawMessage `json:"seed"`
	Stream            *bool           `json:"stream"`
	// Cache false keeps the request out of the response cache.
	Cache *bool `json:"cache"`
}

// openAIFields are the OpenAI request fields aiassist has no use for. They
// are accepted at the values that ask for nothing (n 1, logprobs false,
// penalties 0, ...) so that OpenAI clients, which send some of them by
// default, work; any other value is refused, as it cannot be honoured.
type openAIFields struct {
	StreamOptions    json.RawMessage `json:"stream_options"`
	N                json.RawMessage `json:"n"`
	User             json.RawMessage `json:"user"`
	Logprobs         json.RawMessage `json:"logprobs"`
	TopLogprobs      json.RawMessage `json:"top_logprobs"`
	PresencePenalty  json.RawMessage `json:"presence_penalty"`
	FrequencyPenalty json.RawMessage `json:"frequency_penalty"`
	LogitBias        json.RawMessage `json:"logit_bias"`
	Store            json.RawMessage `json:"store"`
	Metadata         json.RawMessage `json:"metadata"`
	ServiceTier      json.RawMessage `json:"service_tier"`
}

type generateBody struct {
	Prompt *string `json:"prompt"`
	sampling
}

type completionBody struct {
	Prompt json.RawMessage `json:"prompt"`
	Echo   json.RawMessage `json:"echo"`
	BestOf json.RawMessage `json:"best_of"`
	Suffix json.RawMessage `json:"suffix"`
	sampling
	openAIFields
}

type chatBody struct {
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   json.RawMessage `json:"parallel_tool_calls"`
	sampling
	openAIFields
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       json.RawMessage `json:"name"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID json.RawMessage `json:"tool_call_id"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// decodeGenerateRequest decodes the body of POST /v1/generate.
func decodeGenerateRequest(body []byte) (*textRequest, error) {
	var b generateBody
	if err := route.Decode(body, &b); err != nil {
		return nil, err
	}
	if b.Prompt == nil {
		return nil, route.ParamError("prompt", "prompt is required")
	}
	r := &textRequest{Prompt: *b.Prompt}
	if err := b.sampling.apply(r, generateMaxTokens, generateTemperature); err != nil {
		return nil, err
	}
	r.Params.AddSpecialTokens = true
	return r, nil
}

// decodeCompletionRequest decodes the body of POST /v1/completions.
func decodeCompletionRequest(body []byte) (*textRequest, error) {
	var b completionBody
	if err := route.Decode(body, &b); err != nil {
		return nil, err
	}
	prompt, err := completionPrompt(b.Prompt)
	if err != nil {
		return nil, err
	}
	r := &textRequest{Prompt: prompt}
	if err := b.sampling.apply(r, openAIMaxTokens, openAITemperature); err != nil {
		return nil, err
	}
	if err := b.openAIFields.check(r); err != nil {
		return nil, err
	}
	switch {
	case !isNull(b.Echo) && !jsonIs(b.Echo, false):
		return nil, route.ParamError("echo", "echo is not supported; the prompt is not repeated in the completion")
	case !isNull(b.BestOf) && !jsonIs(b.BestOf, 1.0):
		return nil, route.ParamError("best_of", "best_of must be 1: one completion is generated per request")
	case !isNull(b.Suffix) && !jsonIs(b.Suffix, ""):
		return nil, route.ParamError("suffix", "suffix is not supported")
	}
	r.Params.AddSpecialTokens = true
	return r, nil
}

// decodeChatRequest decodes the body of POST /v1/chat/completions.
func decodeChatRequest(body []byte) (*textRequest, error) {
	var b chatBody
	if err := route.Decode(body, &b); err != nil {
		return nil, err
	}
	if len(b.Messages) == 0 {
		return nil, route.ParamError("messages", "messages must hold at least one message")
	}
	r := &textRequest{Messages: make([]generate.Message, len(b.Messages))}
	for i, m := range b.Messages {
		msg, err := m.decode(i)
		if err != nil {
			return nil, err
		}
		r.Messages[i] = msg
	}
	if b.MaxCompletionTokens != nil {
		if b.MaxTokens != nil && *b.MaxTokens != *b.MaxCompletionTokens {
			return nil, route.ParamError("max_completion_tokens", "max_tokens and max_completion_tokens differ; send one of them")
		}
		b.MaxTokens = b.MaxCompletionTokens
	}
	// Without max_tokens a chat answer may run to the end of the context,
	// as with OpenAI.
	if err := b.sampling.apply(r, 0, openAITemperature); err != nil {
		return nil, err
	}
	if err := b.openAIFields.check(r); err != nil {
		return nil, err
	}
	switch {
	case !isNull(b.ResponseFormat) && !jsonIs(b.ResponseFormat, map[string]any{"type": "text"}):
		return nil, route.ParamError("response_format", `response_format must be {"type":"text"}: structured output is not supported`)
	case !isNull(b.Tools) && !jsonIs(b.Tools, []any{}):
		return nil, route.ParamError("tools", "tools are not supported")
	case !isNull(b.ToolChoice) && !jsonIs(b.ToolChoice, "none") && !jsonIs(b.ToolChoice, "auto"):
		return nil, route.ParamError("tool_choice", `tool_choice must be "none" or "auto": tools are not supported`)
	case !isNull(b.ParallelToolCalls) && !jsonIs(b.ParallelToolCalls, true) && !jsonIs(b.ParallelToolCalls, false):
		return nil, route.ParamError("parallel_tool_calls", "parallel_tool_calls must be true or false")
	}
	// The chat template adds the BOS token where the model wants it.
	r.Params.AddSpecialTokens = false
	return r, nil
}

func (m chatMessage) decode(i int) (generate.Message, error) {
	param := "messages[" + strconv.Itoa(i) + "]"
	if m.Role == "" {
		return generate.Message{}, route.ParamError(param+".role", param+" has no role")
	}
	if len(m.Role) > route.MaxEcho {
		// The engine names the roles it knows, all short; it would quote
		// this one whole.
		return generate.Message{}, route.ParamError(param+".role", fmt.Sprintf("%s has role %s, which is not a role", param, route.Quote(m.Role)))
	}
	if !isNull(m.ToolCalls) && !jsonIs(m.ToolCalls, []any{}) {
		return generate.Message{}, route.ParamError(param+".tool_calls", "tool calls are not supported")
	}
	if !isNull(m.Name) {
		if _, ok := jsonValue(m.Name).(string); !ok {
			return generate.Message{}, route.ParamError(param+".name", param+".name must be a string")
		}
	}
	if !isNull(m.ToolCallID) {
		if _, ok := jsonValue(m.ToolCallID).(string); !ok {
			return generate.Message{}, route.ParamError(param+".tool_call_id", param+".tool_call_id must be a string")
		}
	}
	msg := generate.Message{Role: m.Role}
	switch c := jsonValue(m.Content).(type) {
	case string:
		msg.Content = c
	case nil:
		if m.Role != "assistant" {
			return generate.Message{}, route.ParamError(param+".content", param+" has no content")
		}
	case []any:
		var parts []contentPart
		if err := json.Unmarshal(m.Content, &parts); err != nil {
			return generate.Message{}, route.ParamError(param+".content", param+".content must be a string or an array of text parts")
		}
		texts := make([]string, len(parts))
		for j, p := range parts {
			if p.Type != "text" {
				return generate.Message{}, route.ParamError(param+".content", fmt.Sprintf("%s.content[%d] has type %s; only text parts are supported", param, j, route.Quote(p.Type)))
			}
			texts[j] = p.Text
		}
		msg.Content = strings.Join(texts, "\n")
	default:
		return generate.Message{}, route.ParamError(param+".content", param+".content must be a string or an array of text parts")
	}
	return msg, nil
}

// completionPrompt takes a prompt string, or an array of one, as OpenAI's
// clients send it.
func completionPrompt(raw json.RawMessage) (string, error) {
	switch p := jsonValue(raw).(type) {
	case string:
		return p, nil
	case []any:
		for _, e := range p {
			if _, ok := e.(string); !ok {
				return "", route.ParamError("prompt", "prompt must be a string; token id prompts are not supported")
			}
		}
		if len(p) != 1 {
			return "", route.ParamError("prompt", "prompt must be one string: one completion is generated per request")
		}
		return p[0].(string), nil
	case nil:
		return "", route.ParamError("prompt", "prompt is required")
	}
	return "", route.ParamError("prompt", "prompt must be a string")
}

// apply checks the sampling fields and sets them on r, with the route's
// defaults for max_tokens and temperature.
func (s *sampling) apply(r *textRequest, maxTokens int, temperature float64) error {
	r.Model = s.Model
	p := &r.Params
	p.MaxTokens, p.Temperature = maxTokens, temperature
	if s.MaxTokens != nil {
		if *s.MaxTokens < 1 {
			return route.ParamError("max_tokens", fmt.Sprintf("max_tokens must be at least 1, got %d", *s.MaxTokens))
		}
		p.MaxTokens = *s.MaxTokens
		r.ExplicitMaxTokens = true
	}
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	if s.Temperature != nil {
		if t := *s.Temperature; bad(t) || t < 0 {
			return route.ParamError("temperature", fmt.Sprintf("temperature must be 0 (greedy) or more, got %v", t))
		}
		p.Temperature = *s.Temperature
	}
	if s.TopP != nil {
		if v := *s.TopP; bad(v) || v < 0 || v > 1 {
			return route.ParamError("top_p", fmt.Sprintf("top_p must be between 0 and 1, got %v", v))
		}
		p.TopP = *s.TopP
	}
	if s.TopK != nil {
		// vLLM's clients send -1 for off.
		switch k := *s.TopK; {
		case k == -1:
		case k < 0:
			return route.ParamError("top_k", fmt.Sprintf("top_k must be 0 or -1 (off) or more, got %d", k))
		default:
			p.TopK = k
		}
	}
	if s.MinP != nil {
		if v := *s.MinP; bad(v) || v < 0 || v > 1 {
			return route.ParamError("min_p", fmt.Sprintf("min_p must be between 0 and 1, got %v", v))
		}
		p.MinP = *s.MinP
	}
	if s.RepetitionPenalty != nil {
		if v := *s.RepetitionPenalty; bad(v) || v <= 0 {
			return route.ParamError("repetition_penalty", fmt.Sprintf("repetition_penalty must be above 0 (1 is off), got %v", v))
		}
		p.RepetitionPenalty = *s.RepetitionPenalty
	}
	stops, err := decodeStop(s.Stop)
	if err != nil {
		return err
	}
	p.Stop = stops
	if !isNull(s.Seed) {
		seed, err := decodeSeed(s.Seed)
		if err != nil {
			return err
		}
		p.Seed = &seed
	}
	r.Stream = s.Stream != nil && *s.Stream
	r.NoCache = s.Cache != nil && !*s.Cache
	return nil
}

// check refuses the OpenAI fields set to what aiassist cannot do.
func (o *openAIFields) check(r *textRequest) error {
	if !isNull(o.StreamOptions) {
		if !r.Stream {
			return route.ParamError("stream_options", "stream_options is only allowed when stream is true")
		}
		var so struct {
			IncludeUsage *bool `json:"include_usage"`
		}
		if err := route.Decode(o.StreamOptions, &so); err != nil {
			return route.ParamError("stream_options", `stream_options must be {"include_usage": true|false}`)
		}
		r.IncludeUsage = so.IncludeUsage != nil && *so.IncludeUsage
	}
	zero := func(raw json.RawMessage) bool { return isNull(raw) || jsonIs(raw, 0.0) }
	switch {
	case !isNull(o.N) && !jsonIs(o.N, 1.0):
		return route.ParamError("n", "n must be 1: one choice is generated per request")
	case !isNull(o.User):
		if _, ok := jsonValue(o.User).(string); !ok {
			return route.ParamError("user", "user must be a string")
		}
	}
	switch {
	case !isNull(o.Logprobs) && !jsonIs(o.Logprobs, false):
		return route.ParamError("logprobs", "logprobs are not supported")
	case !zero(o.TopLogprobs):
		return route.ParamError("top_logprobs", "logprobs are not supported")
	case !zero(o.PresencePenalty):
		return route.ParamError("presence_penalty", "presence_penalty is not supported; use repetition_penalty")
	case !zero(o.FrequencyPenalty):
		return route.ParamError("frequency_penalty", "frequency_penalty is not supported; use repetition_penalty")
	case !isNull(o.LogitBias) && !jsonIs(o.LogitBias, map[string]any{}):
		return route.ParamError("logit_bias", "logit_bias is not supported")
	case !isNull(o.Store) && !jsonIs(o.Store, false):
		return route.ParamError("store", "store is not supported: completions are not stored")
	case !isNull(o.Metadata):
		if _, ok := jsonValue(o.Metadata).(map[string]any); !ok {
			return route.ParamError("metadata", "metadata must be an object")
		}
	case !isNull(o.ServiceTier) && !jsonIs(o.ServiceTier, "auto") && !jsonIs(o.ServiceTier, "default"):
		return route.ParamError("service_tier", `service_tier must be "auto" or "default"`)
	}
	return nil
}

// decodeStop takes a stop string or an array of them.
func decodeStop(raw json.RawMessage) ([]string, error) {
	var stops []string
	switch v := jsonValue(raw).(type) {
	case nil:
		return nil, nil
	case string:
		stops = []string{v}
	case []any:
		for _, s := range v {
			str, ok := s.(string)
			if !ok {
				return nil, route.ParamError("stop", "stop must be a string or an array of strings")
			}
			stops = append(stops, str)
		}
	default:
		return nil, route.ParamError("stop", "stop must be a string or an array of strings")
	}
	if len(stops) > maxStops {
		return nil, route.ParamError("stop", fmt.Sprintf("stop has %d sequences; at most %d are allowed", len(stops), maxStops))
	}
	for _, s := range stops {
		if s == "" || len(s) > maxStopBytes {
			return nil, route.ParamError("stop", fmt.Sprintf("a stop sequence must be 1 to %d bytes long", maxStopBytes))
		}
	}
	return stops, nil
}

// decodeSeed takes any JSON integer that fits 64 bits; a negative one is
// used as its two's complement, so every OpenAI seed works.
func decodeSeed(raw json.RawMessage) (uint64, error) {
	s := string(bytes.TrimSpace(raw))
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return uint64(i), nil
	}
	return 0, route.ParamError("seed", "seed must be an integer of at most 64 bits, got "+route.Echo(s))
}

// jsonValue decodes raw as a generic value; nil for absent, null or
// invalid JSON (which the strict decode has already refused).
func jsonValue(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	return v
}

// isNull reports whether raw is absent or null. It looks at the text, not
// at jsonValue: a number too large for a float64 is not null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// jsonIs reports whether raw holds the JSON value want (numbers as
// float64).
func jsonIs(raw json.RawMessage, want any) bool {
	return reflect.DeepEqual(jsonValue(raw), want)
}
