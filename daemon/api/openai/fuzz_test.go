package openai

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/aiassist/aiassist/daemon/api/route"
)

// The seeds of these fuzz tests are in testdata/fuzz/<name>/, beside the
// ones added here.

// FuzzDecodeGenerateRequest feeds random bodies to the /v1/generate
// decoder: it must never panic, refuse with a 400 *Error, and accept only
// valid JSON with settings the engine takes.
func FuzzDecodeGenerateRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"Hello"}`,
		`{"prompt":"Hello","max_tokens":200,"temperature":0.7}`,
		`{"prompt":"","model":"m","top_p":0.9,"top_k":40,"min_p":0.05,"repetition_penalty":1.1,"stop":["\n","###"],"seed":-1,"stream":true}`,
		`{"prompt":"a","stop":"x","seed":18446744073709551615}`,
		`{"prompt":"a","max_tokens":0}`,
		`{"prompt":null}`,
		`{"prompt":"a","n":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeGenerateRequest(body)
		checkDecoded(t, body, r, err)
		if err == nil && (r.Params.MaxTokens < 1 || !r.Params.AddSpecialTokens || r.IncludeUsage) {
			t.Fatalf("%s: %+v", body, r)
		}
	})
}

// FuzzDecodeCompletionRequest does the same for /v1/completions.
func FuzzDecodeCompletionRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"Hello"}`,
		`{"prompt":["Hello"],"max_tokens":16,"temperature":1,"top_p":1,"n":1,"stream":true,"stream_options":{"include_usage":true},"logprobs":null,"echo":false,"best_of":1,"suffix":null,"presence_penalty":0,"frequency_penalty":0,"logit_bias":{},"user":"u","seed":42,"stop":null}`,
		`{"prompt":[1,2,3]}`,
		`{"prompt":["a","b"]}`,
		`{"prompt":"a","n":2}`,
		`{"prompt":"a","stream_options":{"include_usage":true}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeCompletionRequest(body)
		checkDecoded(t, body, r, err)
		if err == nil && (r.Params.MaxTokens < 1 || !r.Params.AddSpecialTokens) {
			t.Fatalf("%s: %+v", body, r)
		}
	})
}

// FuzzDecodeChatRequest does the same for /v1/chat/completions.
func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"user","content":"Hi"}]}`,
		`{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":null},{"role":"user","content":"again","name":"bob"}],"max_completion_tokens":64,"stream":true,"stream_options":{"include_usage":false},"tools":[],"tool_choice":"none","response_format":{"type":"text"},"logprobs":false,"top_logprobs":0}`,
		`{"messages":[]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"messages":[{"content":"no role"}]}`,
		`{"messages":[{"role":"user","content":"a"}],"max_tokens":5,"max_completion_tokens":6}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeChatRequest(body)
		checkDecoded(t, body, r, err)
		if err != nil {
			return
		}
		if len(r.Messages) == 0 || r.Params.MaxTokens < 0 || r.Params.AddSpecialTokens {
			t.Fatalf("%s: %+v", body, r)
		}
		for _, m := range r.Messages {
			if m.Role == "" {
				t.Fatalf("%s: a message without a role", body)
			}
		}
	})
}

// checkDecoded holds for every route: an error is a 400 *Error and comes
// alone; an accepted request is valid JSON with settings in range.
func checkDecoded(t *testing.T, body []byte, r *textRequest, err error) {
	t.Helper()
	if err != nil {
		var e *route.Error
		if r != nil || !errors.As(err, &e) || e.Status != 400 || e.Message == "" || e.Type != "invalid_request_error" {
			t.Fatalf("%s: %v (%T), request %+v", body, err, err, r)
		}
		if len(e.Message) > 1024 || len(e.Param) > route.MaxEcho+len("…") {
			t.Fatalf("a message of %d bytes, param of %d: %.200s", len(e.Message), len(e.Param), e.Message)
		}
		return
	}
	if !json.Valid(body) {
		t.Fatalf("accepted invalid JSON %q", body)
	}
	p := r.Params
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0,
		!finite(p.TopP) || p.TopP < 0 || p.TopP > 1,
		p.TopK < 0,
		!finite(p.MinP) || p.MinP < 0 || p.MinP > 1,
		!finite(p.RepetitionPenalty) || p.RepetitionPenalty < 0,
		len(p.Stop) > maxStops,
		r.IncludeUsage && !r.Stream:
		t.Fatalf("%s: accepted %+v", body, r)
	}
	for _, s := range p.Stop {
		if s == "" || len(s) > maxStopBytes {
			t.Fatalf("%s: stop %q", body, s)
		}
	}
}
