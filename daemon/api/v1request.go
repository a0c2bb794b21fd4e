package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

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
	if err := decodeStrict(body, &b); err != nil {
		return nil, err
	}
	if b.Prompt == nil {
		return nil, paramError("prompt", "prompt is required")
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
	if err := decodeStrict(body, &b); err != nil {
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
		return nil, paramError("echo", "echo is not supported; the prompt is not repeated in the completion")
	case !isNull(b.BestOf) && !jsonIs(b.BestOf, 1.0):
		return nil, paramError("best_of", "best_of must be 1: one completion is generated per request")
	case !isNull(b.Suffix) && !jsonIs(b.Suffix, ""):
		return nil, paramError("suffix", "suffix is not supported")
	}
	r.Params.AddSpecialTokens = true
	return r, nil
}

// decodeChatRequest decodes the body of POST /v1/chat/completions.
func decodeChatRequest(body []byte) (*textRequest, error) {
	var b chatBody
	if err := decodeStrict(body, &b); err != nil {
		return nil, err
	}
	if len(b.Messages) == 0 {
		return nil, paramError("messages", "messages must hold at least one message")
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
			return nil, paramError("max_completion_tokens", "max_tokens and max_completion_tokens differ; send one of them")
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
		return nil, paramError("response_format", `response_format must be {"type":"text"}: structured output is not supported`)
	case !isNull(b.Tools) && !jsonIs(b.Tools, []any{}):
		return nil, paramError("tools", "tools are not supported")
	case !isNull(b.ToolChoice) && !jsonIs(b.ToolChoice, "none") && !jsonIs(b.ToolChoice, "auto"):
		return nil, paramError("tool_choice", `tool_choice must be "none" or "auto": tools are not supported`)
	case !isNull(b.ParallelToolCalls) && !jsonIs(b.ParallelToolCalls, true) && !jsonIs(b.ParallelToolCalls, false):
		return nil, paramError("parallel_tool_calls", "parallel_tool_calls must be true or false")
	}
	// The chat template adds the BOS token where the model wants it.
	r.Params.AddSpecialTokens = false
	return r, nil
}

func (m chatMessage) decode(i int) (generate.Message, error) {
	param := "messages[" + strconv.Itoa(i) + "]"
	if m.Role == "" {
		return generate.Message{}, paramError(param+".role", param+" has no role")
	}
	if !isNull(m.ToolCalls) && !jsonIs(m.ToolCalls, []any{}) {
		return generate.Message{}, paramError(param+".tool_calls", "tool calls are not supported")
	}
	if !isNull(m.Name) {
		if _, ok := jsonValue(m.Name).(string); !ok {
			return generate.Message{}, paramError(param+".name", param+".name must be a string")
		}
	}
	if !isNull(m.ToolCallID) {
		if _, ok := jsonValue(m.ToolCallID).(string); !ok {
			return generate.Message{}, paramError(param+".tool_call_id", param+".tool_call_id must be a string")
		}
	}
	msg := generate.Message{Role: m.Role}
	switch c := jsonValue(m.Content).(type) {
	case string:
		msg.Content = c
	case nil:
		if m.Role != "assistant" {
			return generate.Message{}, paramError(param+".content", param+" has no content")
		}
	case []any:
		var parts []contentPart
		if err := json.Unmarshal(m.Content, &parts); err != nil {
			return generate.Message{}, paramError(param+".content", param+".content must be a string or an array of text parts")
		}
		texts := make([]string, len(parts))
		for j, p := range parts {
			if p.Type != "text" {
				return generate.Message{}, paramError(param+".content", fmt.Sprintf("%s.content[%d] has type %q; only text parts are supported", param, j, p.Type))
			}
			texts[j] = p.Text
		}
		msg.Content = strings.Join(texts, "\n")
	default:
		return generate.Message{}, paramError(param+".content", param+".content must be a string or an array of text parts")
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
				return "", paramError("prompt", "prompt must be a string; token id prompts are not supported")
			}
		}
		if len(p) != 1 {
			return "", paramError("prompt", "prompt must be one string: one completion is generated per request")
		}
		return p[0].(string), nil
	case nil:
		return "", paramError("prompt", "prompt is required")
	}
	return "", paramError("prompt", "prompt must be a string")
}

// apply checks the sampling fields and sets them on r, with the route's
// defaults for max_tokens and temperature.
func (s *sampling) apply(r *textRequest, maxTokens int, temperature float64) error {
	r.Model = s.Model
	p := &r.Params
	p.MaxTokens, p.Temperature = maxTokens, temperature
	if s.MaxTokens != nil {
		if *s.MaxTokens < 1 {
			return paramError("max_tokens", fmt.Sprintf("max_tokens must be at least 1, got %d", *s.MaxTokens))
		}
		p.MaxTokens = *s.MaxTokens
	}
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	if s.Temperature != nil {
		if t := *s.Temperature; bad(t) || t < 0 {
			return paramError("temperature", fmt.Sprintf("temperature must be 0 (greedy) or more, got %v", t))
		}
		p.Temperature = *s.Temperature
	}
	if s.TopP != nil {
		if v := *s.TopP; bad(v) || v < 0 || v > 1 {
			return paramError("top_p", fmt.Sprintf("top_p must be between 0 and 1, got %v", v))
		}
		p.TopP = *s.TopP
	}
	if s.TopK != nil {
		// vLLM's clients send -1 for off.
		switch k := *s.TopK; {
		case k == -1:
		case k < 0:
			return paramError("top_k", fmt.Sprintf("top_k must be 0 or -1 (off) or more, got %d", k))
		default:
			p.TopK = k
		}
	}
	if s.MinP != nil {
		if v := *s.MinP; bad(v) || v < 0 || v > 1 {
			return paramError("min_p", fmt.Sprintf("min_p must be between 0 and 1, got %v", v))
		}
		p.MinP = *s.MinP
	}
	if s.RepetitionPenalty != nil {
		if v := *s.RepetitionPenalty; bad(v) || v <= 0 {
			return paramError("repetition_penalty", fmt.Sprintf("repetition_penalty must be above 0 (1 is off), got %v", v))
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
	return nil
}

// check refuses the OpenAI fields set to what aiassist cannot do.
func (o *openAIFields) check(r *textRequest) error {
	if !isNull(o.StreamOptions) {
		if !r.Stream {
			return paramError("stream_options", "stream_options is only allowed when stream is true")
		}
		var so struct {
			IncludeUsage *bool `json:"include_usage"`
		}
		if err := decodeStrict(o.StreamOptions, &so); err != nil {
			return paramError("stream_options", `stream_options must be {"include_usage": true|false}`)
		}
		r.IncludeUsage = so.IncludeUsage != nil && *so.IncludeUsage
	}
	zero := func(raw json.RawMessage) bool { return isNull(raw) || jsonIs(raw, 0.0) }
	switch {
	case !isNull(o.N) && !jsonIs(o.N, 1.0):
		return paramError("n", "n must be 1: one choice is generated per request")
	case !isNull(o.User):
		if _, ok := jsonValue(o.User).(string); !ok {
			return paramError("user", "user must be a string")
		}
	}
	switch {
	case !isNull(o.Logprobs) && !jsonIs(o.Logprobs, false):
		return paramError("logprobs", "logprobs are not supported")
	case !zero(o.TopLogprobs):
		return paramError("top_logprobs", "logprobs are not supported")
	case !zero(o.PresencePenalty):
		return paramError("presence_penalty", "presence_penalty is not supported; use repetition_penalty")
	case !zero(o.FrequencyPenalty):
		return paramError("frequency_penalty", "frequency_penalty is not supported; use repetition_penalty")
	case !isNull(o.LogitBias) && !jsonIs(o.LogitBias, map[string]any{}):
		return paramError("logit_bias", "logit_bias is not supported")
	case !isNull(o.Store) && !jsonIs(o.Store, false):
		return paramError("store", "store is not supported: completions are not stored")
	case !isNull(o.Metadata):
		if _, ok := jsonValue(o.Metadata).(map[string]any); !ok {
			return paramError("metadata", "metadata must be an object")
		}
	case !isNull(o.ServiceTier) && !jsonIs(o.ServiceTier, "auto") && !jsonIs(o.ServiceTier, "default"):
		return paramError("service_tier", `service_tier must be "auto" or "default"`)
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
				return nil, paramError("stop", "stop must be a string or an array of strings")
			}
			stops = append(stops, str)
		}
	default:
		return nil, paramError("stop", "stop must be a string or an array of strings")
	}
	if len(stops) > maxStops {
		return nil, paramError("stop", fmt.Sprintf("stop has %d sequences; at most %d are allowed", len(stops), maxStops))
	}
	for _, s := range stops {
		if s == "" || len(s) > maxStopBytes {
			return nil, paramError("stop", fmt.Sprintf("a stop sequence must be 1 to %d bytes long", maxStopBytes))
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
	return 0, paramError("seed", "seed must be an integer of at most 64 bits, got "+truncate(s, 40))
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data, with messages that name the field at fault.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return newError(400, "invalid_request_error", "invalid_json", "the request body has data after the JSON object")
		}
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return paramError("", "the request body must be a JSON object")
		}
		// The path names the embedded structs too.
		field := strings.TrimPrefix(strings.TrimPrefix(typeErr.Field, "sampling."), "openAIFields.")
		return paramError(field, fmt.Sprintf("%s must be %s, not %s", field, typeName(typeErr.Type), typeErr.Value))
	case errors.As(err, &syntaxErr):
		return newError(400, "invalid_request_error", "invalid_json", fmt.Sprintf("the request body is not valid JSON: %v (at byte %d)", syntaxErr, syntaxErr.Offset))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return newError(400, "invalid_request_error", "invalid_json", "the request body is not a complete JSON object")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		e := paramError(name, fmt.Sprintf("unknown field %q; aiassist does not support it", name))
		e.Code = "unsupported_field"
		return e
	}
	return newError(400, "invalid_request_error", "invalid_json", "the request body is not valid: "+err.Error())
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

func paramError(param, msg string) *Error {
	e := badRequest(msg)
	e.Param = param
	return e
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

func isNull(raw json.RawMessage) bool { return jsonValue(raw) == nil }

// jsonIs reports whether raw holds the JSON value want (numbers as
// float64).
func jsonIs(raw json.RawMessage, want any) bool {
	return reflect.DeepEqual(jsonValue(raw), want)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
