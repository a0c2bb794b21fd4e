package openai

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aiassist/aiassist/daemon/api/route"
)

// FuzzDecodeEmbeddingsRequest feeds random bodies to the /v1/embeddings
// decoder (seeds also in testdata/fuzz/FuzzDecodeEmbeddingsRequest): it
// must never panic, refuse with a 400 *route.Error with a bounded message,
// and accept only valid JSON whose inputs are non-empty texts or token
// ids from 0, within the bounds of one request.
func FuzzDecodeEmbeddingsRequest(f *testing.F) {
	for _, s := range []string{
		"{\n  \"model\": \"tiny-bert\",\n  \"input\": \"hello world\",\n  \"encoding_format\": \"base64\"\n}",
		`{"model":"m","input":["a","b"],"encoding_format":"float","dimensions":8,"user":"u"}`,
		`{"input":[1,2,3]}`,
		`{"input":[[1,2],[3]]}`,
		`{"input":[[1],"a"]}`,
		`{"input":[1.5]}`,
		`{"input":""}`,
		`{"input":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeEmbeddingsRequest(body)
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
		if len(r.Inputs) == 0 || len(r.Inputs) > maxEmbeddingIDs || r.Dimensions < 0 {
			t.Fatalf("%s: accepted %+v", body, r)
		}
		ids := 0
		for _, in := range r.Inputs {
			if in.IsIDs && len(in.IDs) == 0 || !in.IsIDs && in.Text == "" {
				t.Fatalf("%s: accepted an empty input", body)
			}
			for _, id := range in.IDs {
				if id < 0 {
					t.Fatalf("%s: accepted id %d", body, id)
				}
			}
			ids += len(in.IDs)
		}
		if ids > maxEmbeddingIDs {
			t.Fatalf("%s: accepted %d ids", body, ids)
		}
	})
}
