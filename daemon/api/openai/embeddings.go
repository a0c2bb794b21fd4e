package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/engine/embed"
)

// Bounds of an embeddings request, OpenAI's: at most 2048 inputs, and
// 300000 token ids in the token arrays of one request.
const (
	maxEmbeddingInputs = 2048
	maxEmbeddingIDs    = 300000
)

// embeddingsRequest is a POST /v1/embeddings body, decoded and checked.
type embeddingsRequest struct {
	Model  string
	Inputs []embed.Input
	// Base64 answers each embedding as the base64 of its little-endian
	// float32 values, which the official SDKs ask for by default.
	Base64     bool
	Dimensions int // 0: the model's own
	// NoCache is "cache": false: the answer is neither read from the
	// response cache nor stored.
	NoCache bool
}

type embeddingsBody struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	// User is OpenAI's end-user id; accepted and not used.
	User *string `json:"user"`
	// Cache false bypasses the response cache.
	Cache *bool `json:"cache"`
}

// decodeEmbeddingsRequest decodes the body of POST /v1/embeddings. input
// is a string, an array of strings, an array of token ids, or an array of
// arrays of token ids; none may be empty.
func decodeEmbeddingsRequest(body []byte) (*embeddingsRequest, error) {
	var b embeddingsBody
	if err := route.Decode(body, &b); err != nil {
		return nil, err
	}
	r := &embeddingsRequest{Model: b.Model, NoCache: b.Cache != nil && !*b.Cache}
	if b.EncodingFormat != nil {
		switch *b.EncodingFormat {
		case "float":
		case "base64":
			r.Base64 = true
		default:
			return nil, route.ParamError("encoding_format", "encoding_format must be \"float\" or \"base64\", not "+route.Quote(*b.EncodingFormat))
		}
	}
	if b.Dimensions != nil {
		if *b.Dimensions < 1 {
			return nil, route.ParamError("dimensions", fmt.Sprintf("dimensions must be at least 1, not %d", *b.Dimensions))
		}
		r.Dimensions = *b.Dimensions
	}
	var err error
	if r.Inputs, err = decodeInputs(b.Input); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeInputs(raw json.RawMessage) ([]embed.Input, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, route.ParamError("input", "input is required: a string, an array of strings, or token ids")
	}
	const shape = "input must be a string, an array of strings, an array of token ids, or an array of arrays of token ids"
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, route.ParamError("input", shape)
		}
		if s == "" {
			return nil, route.ParamError("input", "input is an empty string; send some text")
		}
		return []embed.Input{{Text: s}}, nil
	case '[':
	default:
		return nil, route.ParamError("input", shape)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, route.ParamError("input", shape)
	}
	switch {
	case len(items) == 0:
		return nil, route.ParamError("input", "input is an empty array; send at least one input")
	case len(items) > maxEmbeddingInputs && (items[0][0] == '"' || items[0][0] == '['):
		return nil, route.ParamError("input", fmt.Sprintf("input has %d inputs, more than the %d one request takes; split the request", len(items), maxEmbeddingInputs))
	}
	ids := 0
	switch items[0][0] {
	case '"':
		inputs := make([]embed.Input, len(items))
		for i, it := range items {
			if len(it) == 0 || it[0] != '"' || json.Unmarshal(it, &inputs[i].Text) != nil {
				return nil, route.ParamError("input", fmt.Sprintf("input[%d] is not a string, but input[0] is; %s", i, shape))
			}
			if inputs[i].Text == "" {
				return nil, route.ParamError("input", fmt.Sprintf("input[%d] is an empty string; send some text", i))
			}
		}
		return inputs, nil
	case '[':
		inputs := make([]embed.Input, len(items))
		for i, it := range items {
			if len(it) == 0 || it[0] != '[' {
				return nil, route.ParamError("input", fmt.Sprintf("input[%d] is not an array of token ids, but input[0] is; %s", i, shape))
			}
			var toks []json.RawMessage
			if json.Unmarshal(it, &toks) != nil {
				return nil, route.ParamError("input", fmt.Sprintf("input[%d]: %s", i, shape))
			}
			if len(toks) == 0 {
				return nil, route.ParamError("input", fmt.Sprintf("input[%d] is an empty array of token ids", i))
			}
			if ids += len(toks); ids > maxEmbeddingIDs {
				return nil, route.ParamError("input", fmt.Sprintf("input has more than %d token ids, the most one request takes; split the request", maxEmbeddingIDs))
			}
			var err error
			if inputs[i].IDs, err = tokenIDs(toks, fmt.Sprintf("input[%d]", i)); err != nil {
				return nil, err
			}
			inputs[i].IsIDs = true
		}
		return inputs, nil
	}
	if len(items) > maxEmbeddingIDs {
		return nil, route.ParamError("input", fmt.Sprintf("input has %d token ids, more than the %d one request takes; split the request", len(items), maxEmbeddingIDs))
	}
	toks, err := tokenIDs(items, "input")
	if err != nil {
		return nil, err
	}
	return []embed.Input{{IDs: toks, IsIDs: true}}, nil
}

// tokenIDs reads token ids: integers from 0 to 2^31-1.
func tokenIDs(raw []json.RawMessage, at string) ([]int, error) {
	ids := make([]int, len(raw))
	for j, r := range raw {
		n, err := strconv.ParseInt(string(r), 10, 32)
		if err != nil || n < 0 {
			return nil, route.ParamError("input", fmt.Sprintf("%s[%d] is %s, not a token id (an integer from 0)", at, j, route.Echo(string(r))))
		}
		ids[j] = int(n)
	}
	return ids, nil
}

// resolveEmbeddings reads an embeddings request and picks its model:
// the one named, or the only embedding model.
func resolveEmbeddings(r *route.Request) (route.Handler, error) {
	req, err := decodeEmbeddingsRequest(r.Ctx.Request.Body())
	if err != nil {
		return nil, err
	}
	name, m, err := embedder(r.State, req.Model)
	if err != nil {
		return nil, err
	}
	r.Model = name
	return &embedCall{req: req, m: m}, nil
}

// embedder returns the embedding model a request names, or the only one.
func embedder(st *route.State, name string) (string, *embed.Model, error) {
	if name == "" {
		if len(st.Embedders) != 1 {
			return "", nil, route.ParamError("model", fmt.Sprintf("the request names no model and %d embedding models are served; send \"model\" (GET /v1/models lists them)", len(st.Embedders)))
		}
		for n, m := range st.Embedders {
			return n, m, nil
		}
	}
	if m := st.Embedders[name]; m != nil {
		return name, m, nil
	}
	if st.Generators[name] != nil || st.Models[name] != nil {
		return "", nil, route.ParamError("model", fmt.Sprintf("model %q is not an embedding model; GET /v1/models lists the models and their kinds", name))
	}
	e := route.ModelNotFound(name, "GET /v1/models lists the models")
	e.Param = "model"
	return "", nil, e
}

// embedCall is one embeddings request, decoded, with its model.
type embedCall struct {
	req *embeddingsRequest
	m   *embed.Model
}

func (c *embedCall) Serve(r *route.Request) (route.Stream, error) {
	ctx, cancel, err := route.Deadline(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	// Embeddings are deterministic: every request may be answered from
	// the cache, and a hit is charged the tokens the run was.
	cu := useCache(r, cache.KindEmbeddings, true, c.req.NoCache, embeddingsKey(c.req))
	if e := cu.get(r); e != nil {
		r.TokensIn = e.PromptTokens
		r.Extra = append(r.Extra, slog.Int("prompt_tokens", e.PromptTokens), slog.Int("inputs", len(c.req.Inputs)))
		r.Ctx.SetStatusCode(200)
		r.Ctx.SetContentType("application/json")
		r.Ctx.SetBody(e.Body)
		return nil, nil
	}
	res, err := embeddings(ctx, r.Model, c.m, c.req)
	// What the request's limit class is charged with, as for generation.
	r.TokensIn = res.Tokens
	r.QueueWait = res.QueueWait
	r.Extra = append(r.Extra, slog.Int("prompt_tokens", res.Tokens), slog.Int("inputs", len(c.req.Inputs)), slog.Int("chunks", res.Chunks))
	if err != nil {
		return nil, err
	}
	cu.put(&cache.Entry{Body: res.Body, PromptTokens: res.Tokens})
	r.Ctx.SetStatusCode(200)
	r.Ctx.SetContentType("application/json")
	r.Ctx.SetBody(res.Body)
	return nil, nil
}

// embeddingsKey adds what changes an embeddings answer to its cache key:
// the inputs (text, or token ids), the encoding and the size.
func embeddingsKey(req *embeddingsRequest) func(*cache.KeyBuilder) {
	return func(k *cache.KeyBuilder) {
		k.Int("inputs", int64(len(req.Inputs)))
		var ids []byte
		for _, in := range req.Inputs {
			k.Bool("is_ids", in.IsIDs)
			if !in.IsIDs {
				k.String("text", in.Text)
				continue
			}
			ids = ids[:0]
			for _, id := range in.IDs {
				ids = binary.LittleEndian.AppendUint32(ids, uint32(id))
			}
			k.Bytes("ids", ids)
		}
		k.Bool("base64", req.Base64)
		k.Int("dimensions", int64(req.Dimensions))
	}
}

// embeddingsResult is the answer to one embeddings request: the response
// body and what the request used. It is a plain value, so that a cache can
// keep it.
type embeddingsResult struct {
	Body      []byte
	Tokens    int // usage.prompt_tokens
	Chunks    int // the windows of all inputs
	QueueWait time.Duration
}

// embeddings runs req on m (served as name) and renders the response.
func embeddings(ctx context.Context, name string, m *embed.Model, req *embeddingsRequest) (embeddingsResult, error) {
	if d := req.Dimensions; d > 0 && !m.Matryoshka() && d != m.Dimensions() {
		return embeddingsResult{}, route.ParamError("dimensions", fmt.Sprintf("model %s gives embeddings of %d dimensions and does not take another size (matryoshka is false in its config); leave dimensions out", route.Quote(name), m.Dimensions()))
	} else if d > m.Dimensions() && m.Dimensions() > 0 {
		return embeddingsResult{}, route.ParamError("dimensions", fmt.Sprintf("dimensions %d is more than the %d of model %s", d, m.Dimensions(), route.Quote(name)))
	}
	res, err := m.Embed(ctx, embed.Request{Inputs: req.Inputs, Dimensions: req.Dimensions})
	if err != nil {
		return embeddingsResult{}, err
	}
	out := embeddingsResult{Tokens: res.Tokens, QueueWait: res.QueueWait}
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
		// Chunks is aiassist's: the windows the input was split into.
		Chunks int `json:"chunks"`
	}
	body := struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}{Object: "list", Data: make([]item, len(res.Embeddings)), Model: name}
	for i, v := range res.Embeddings {
		body.Data[i] = item{Object: "embedding", Index: i, Embedding: v, Chunks: res.Chunks[i]}
		if req.Base64 {
			body.Data[i].Embedding = float32Base64(v)
		}
		out.Chunks += res.Chunks[i]
	}
	body.Usage.PromptTokens, body.Usage.TotalTokens = res.Tokens, res.Tokens
	if out.Body, err = json.Marshal(body); err != nil {
		return embeddingsResult{}, err
	}
	return out, nil
}

// float32Base64 is the base64 of v's little-endian float32 values, which
// the official SDKs decode into a Float32Array (or numpy float32).
func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// embeddingObjects are the embedding models as /v1/models lists them, by
// name.
func (mr modelRoutes) embeddingObjects(st *route.State) []modelObject {
	var out []modelObject
	for _, name := range sortedKeys(st.Embedders) {
		out = append(out, mr.embeddingObject(name, st.Embedders[name]))
	}
	return out
}

func (mr modelRoutes) embeddingObject(name string, m *embed.Model) modelObject {
	return modelObject{ID: name, Object: "model", Created: mr.created, OwnedBy: "aiassist", Kind: "embedding", MaxModelLen: m.MaxLength()}
}

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
