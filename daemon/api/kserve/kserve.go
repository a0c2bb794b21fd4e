// Package kserve serves the KServe v2 (Open Inference Protocol) REST
// routes for tensor models: health, server and model metadata, inference
// with JSON or binary tensor data, and the repository index that lists the
// tensor models, as Triton's and KServe's clients know it.
package kserve

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/engine"
)

// InferenceHeaderLength is the KServe binary tensor extension's header: the
// body starts with this many bytes of JSON, then raw tensor data follows.
const InferenceHeaderLength = "Inference-Header-Content-Length"

// Options are what the routes need from the server.
type Options struct {
	Version string
	// Ready reports whether the daemon serves; nil is always.
	Ready func() bool
}

// Routes are the KServe v2 routes.
func Routes(o Options) []*route.Route {
	model := func(action string) []string {
		return []string{"/v2/models/{name}" + action, "/v2/models/{name}/versions/{version}" + action}
	}
	return []*route.Route{
		{Name: "/v2/health/live", Method: "GET", Resolve: static(func(r *route.Request) error {
			return route.WriteJSON(r.Ctx, 200, map[string]bool{"live": true})
		})},
		{Name: "/v2/health/ready", Method: "GET", Resolve: static(func(r *route.Request) error {
			ready := o.Ready == nil || o.Ready()
			status := 200
			if !ready {
				status = fasthttp.StatusServiceUnavailable
			}
			return route.WriteJSON(r.Ctx, status, map[string]bool{"ready": ready})
		})},
		{Name: "/v2", Method: "GET", Resolve: static(func(r *route.Request) error {
			return route.WriteJSON(r.Ctx, 200, map[string]any{"name": "aiassist", "version": o.Version, "extensions": []string{"binary_tensor_data"}})
		})},
		{Name: "/v2/repository/index", Method: "POST", Resolve: resolveIndex},
		{Name: "/v2/models/{name}", Method: "GET", Paths: model(""), Resolve: func(r *route.Request) (route.Handler, error) {
			m, err := tensorModel(r)
			if err != nil {
				return nil, err
			}
			return answer(func(r *route.Request) error { return route.WriteJSON(r.Ctx, 200, describeModel(m)) }), nil
		}},
		{Name: "/v2/models/{name}/ready", Method: "GET", Paths: model("/ready"), Resolve: func(r *route.Request) (route.Handler, error) {
			m, err := tensorModel(r)
			if err != nil {
				return nil, err
			}
			return answer(func(r *route.Request) error {
				return route.WriteJSON(r.Ctx, 200, map[string]any{"name": m.Name(), "ready": true})
			}), nil
		}},
		{Name: "/v2/models/{name}/infer", Method: "POST", Paths: model("/infer"), Resolve: func(r *route.Request) (route.Handler, error) {
			m, err := tensorModel(r)
			if err != nil {
				return nil, err
			}
			return inferCall{m}, nil
		}},
	}
}

// static is the Resolve of a route that serves no model.
func static(f func(r *route.Request) error) func(*route.Request) (route.Handler, error) {
	return func(*route.Request) (route.Handler, error) { return answer(f), nil }
}

// answer is a Handler that answers at once.
func answer(f func(r *route.Request) error) route.Handler {
	return route.HandlerFunc(func(r *route.Request) (route.Stream, error) { return nil, f(r) })
}

// tensorModel is the model the path names, or the 404 that says where to
// look: a causal-lm model is served by the /v1 routes, not here.
func tensorModel(r *route.Request) (*engine.TensorModel, error) {
	if v := r.Param("version"); v != "" && v != "1" {
		return nil, route.NewError(fasthttp.StatusNotFound, "not_found_error", "version_not_found", "only version \"1\" is served; "+route.Quote(v)+" is not")
	}
	name := r.Param("name")
	if m := r.State.Models[name]; m != nil {
		r.Model = name
		return m, nil
	}
	if r.State.Generators[name] != nil {
		r.Model = name
		return nil, route.NewError(fasthttp.StatusNotFound, "not_found_error", "model_not_found",
			"model "+strconv.Quote(name)+" is a causal-lm model, served by POST /v1/chat/completions, /v1/completions and /v1/generate, not by the KServe routes; GET /v1/models lists those models")
	}
	if r.State.Embedders[name] != nil {
		r.Model = name
		return nil, route.NewError(fasthttp.StatusNotFound, "not_found_error", "model_not_found",
			"model "+strconv.Quote(name)+" is an embedding model, served by POST /v1/embeddings, not by the KServe routes; GET /v1/models lists it")
	}
	return nil, route.ModelNotFound(name, "POST /v2/repository/index lists the tensor models")
}

// inferCall is one inference request to a tensor model.
type inferCall struct{ m *engine.TensorModel }

func (c inferCall) Serve(r *route.Request) (route.Stream, error) {
	ctx := r.Ctx
	headerLen := -1
	if h := ctx.Request.Header.Peek(InferenceHeaderLength); len(h) > 0 {
		n, err := strconv.Atoi(string(h))
		if err != nil || n < 0 {
			return nil, route.BadRequest(InferenceHeaderLength + " must be a non-negative integer")
		}
		headerLen = n
	}
	req, err := decodeInferRequest(ctx.Request.Body(), headerLen)
	if err != nil {
		return nil, err
	}
	if err := checkOutputs(c.m, req.Outputs); err != nil {
		return nil, err
	}
	rctx, cancel, err := route.Deadline(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rctx, stats := engine.WithStats(rctx)
	outs, err := c.m.Infer(rctx, req.Inputs, req.Outputs)
	r.QueueWait = stats.QueueWait
	if err != nil {
		return nil, err
	}
	// Written straight into the response's own (pooled) body buffer,
	// not into a new one that SetBody would copy.
	body, hl := encodeInferResponse(ctx.Response.SwapBody(nil)[:0], c.m.Name(), req.ID, outs, req)
	if hl >= 0 {
		ctx.Response.Header.Set(InferenceHeaderLength, strconv.Itoa(hl))
		ctx.SetContentType("application/octet-stream")
	} else {
		ctx.SetContentType("application/json")
	}
	ctx.Response.SwapBody(body)
	return nil, nil
}

// checkOutputs refuses output names the model does not have here, where
// the name in the message can be capped.
func checkOutputs(m *engine.TensorModel, names []string) error {
	var have []string
	for _, o := range m.Outputs() {
		have = append(have, o.Name)
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			return route.BadRequest(fmt.Sprintf("model %q has no output %s; it has %s", m.Name(), route.Quote(n), strings.Join(have, ", ")))
		}
	}
	return nil
}

type tensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type modelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []tensorMetadata `json:"inputs"`
	Outputs  []tensorMetadata `json:"outputs"`
}

func describeModel(m *engine.TensorModel) modelMetadata {
	conv := func(infos []engine.IOInfo) []tensorMetadata {
		out := make([]tensorMetadata, len(infos))
		for i, in := range infos {
			out[i] = tensorMetadata{Name: in.Name, Datatype: string(in.DataType), Shape: in.Shape}
		}
		return out
	}
	return modelMetadata{Name: m.Name(), Versions: []string{"1"}, Platform: "onnxruntime_onnx", Inputs: conv(m.Inputs()), Outputs: conv(m.Outputs())}
}

// indexEntry is one model of the repository index, in the shape of the
// Triton/KServe model repository extension.
type indexEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	State   string `json:"state"`
}

// resolveIndex reads the optional {"ready": bool} body of POST
// /v2/repository/index. Every listed model is loaded and ready, so ready
// true and false list the same models.
func resolveIndex(r *route.Request) (route.Handler, error) {
	if body := r.Ctx.Request.Body(); len(body) > 0 {
		var req struct {
			Ready *bool `json:"ready"`
		}
		if err := route.Decode(body, &req); err != nil {
			return nil, err
		}
	}
	return answer(func(r *route.Request) error {
		list := make([]indexEntry, 0, len(r.State.Models))
		for name := range r.State.Models {
			list = append(list, indexEntry{Name: name, Version: "1", State: "READY"})
		}
		slices.SortFunc(list, func(a, b indexEntry) int { return strings.Compare(a.Name, b.Name) })
		return route.WriteJSON(r.Ctx, 200, list)
	}), nil
}
