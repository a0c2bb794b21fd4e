package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/api/kserve"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/modelgen"
)

// response is a v2 inference response with data kept raw.
type response struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name       string          `json:"name"`
		Datatype   string          `json:"datatype"`
		Shape      []int64         `json:"shape"`
		Data       json.RawMessage `json:"data"`
		Parameters map[string]any  `json:"parameters"`
	} `json:"outputs"`
}

func decodeResponse(t testing.TB, r reply) response {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var resp response
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("response %s: %v", r.body, err)
	}
	return resp
}

func f32s(t testing.TB, raw json.RawMessage) []float32 {
	t.Helper()
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("data %s: %v", raw, err)
	}
	return v
}

// closeTo compares with a relative tolerance of 1e-5, measured against
// max(1, |want|) so values near zero are not held to an impossible bound.
func closeTo(got, want []float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Max(1, math.Abs(float64(want[i]))) {
			return false
		}
	}
	return true
}

func rowsInput(rows, width, seed int) []float32 {
	x := make([]float32, rows*width)
	for i := range x {
		x[i] = float32((i*7+seed*13)%17)/8 - 1
	}
	return x
}

func jsonArray[T any](v []T) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// nested writes x as rows of width values.
func nested(x []float32, width int) string {
	var rows [][]float32
	for i := 0; i < len(x); i += width {
		rows = append(rows, x[i:i+width])
	}
	return jsonArray(rows)
}

func inferBody(rows int, data string) string {
	return fmt.Sprintf(`{"id":"r1","inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":%s}]}`, rows, data)
}

func TestInferMatchesForward(t *testing.T) {
	mlp := modelgen.DemoMLP()
	path := demoPath(t)
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{
		"demo": loadModel(t, engine.TensorModelOptions{Name: "demo", Path: path, Batching: batching}),
	}}, serverOptions{})
	for _, rows := range []int{1, 2, 4} {
		x := rowsInput(rows, 4, rows)
		want := mlp.Forward(x, rows)
		for name, data := range map[string]string{"flat": jsonArray(x), "nested": nested(x, 4)} {
			resp := decodeResponse(t, ts.post(t, "/v2/models/demo/infer", inferBody(rows, data)))
			if resp.ModelName != "demo" || resp.ModelVersion != "1" || resp.ID != "r1" || len(resp.Outputs) != 1 {
				t.Fatalf("rows %d %s: response %+v", rows, name, resp)
			}
			o := resp.Outputs[0]
			if o.Name != "output" || o.Datatype != "FP32" || fmt.Sprint(o.Shape) != fmt.Sprintf("[%d 3]", rows) {
				t.Errorf("rows %d %s: output %s %s %v", rows, name, o.Name, o.Datatype, o.Shape)
			}
			if got := f32s(t, o.Data); !closeTo(got, want) {
				t.Errorf("rows %d %s: got %v, want %v", rows, name, got, want)
			}
		}
	}
	// The version path serves the same model.
	x := rowsInput(1, 4, 9)
	resp := decodeResponse(t, ts.post(t, "/v2/models/demo/versions/1/infer", inferBody(1, jsonArray(x))))
	if got := f32s(t, resp.Outputs[0].Data); !closeTo(got, mlp.Forward(x, 1)) {
		t.Errorf("versions/1: got %v", got)
	}
}

// typesRequest is two rows of every TypesModel input; typesWant is what the
// model answers, by output.
const typesRequest = `{"inputs":[
	{"name":"f32","shape":[2,2],"datatype":"FP32","data":[[1.5,-3],[0.25,1e3]]},
	{"name":"f64","shape":[2,2],"datatype":"FP64","data":[1.5,-2,1e300,-0.5]},
	{"name":"i32","shape":[2,2],"datatype":"INT32","data":[[7,-1],[2147483646,-2147483648]]},
	{"name":"i64","shape":[2,2],"datatype":"INT64","data":[5,1099511627776,-3,1000000000000000]},
	{"name":"flag","shape":[2,2],"datatype":"BOOL","data":[[true,false],[1,0]]}]}`

var typesWant = map[string]struct {
	datatype string
	data     string
}{
	"f32_out":  {"FP32", `[3,-6,0.5,2000]`},
	"f64_out":  {"FP64", `[2.5,-1,1e+300,0.5]`},
	"i32_out":  {"INT32", `[8,0,2147483647,-2147483647]`},
	"i64_out":  {"INT64", `[15,3298534883328,-9,3000000000000000]`},
	"flag_out": {"BOOL", `[false,true,false,true]`},
}

func TestInferEveryDatatype(t *testing.T) {
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{
		"types": loadModel(t, engine.TensorModelOptions{Name: "types", Path: typesPath(t), Batching: batching}),
	}}, serverOptions{})
	resp := decodeResponse(t, ts.post(t, "/v2/models/types/infer", typesRequest))
	if len(resp.Outputs) != len(typesWant) {
		t.Fatalf("%d outputs, want %d", len(resp.Outputs), len(typesWant))
	}
	for _, o := range resp.Outputs {
		w, ok := typesWant[o.Name]
		if !ok {
			t.Errorf("unexpected output %q", o.Name)
			continue
		}
		if o.Datatype != w.datatype || fmt.Sprint(o.Shape) != "[2 2]" || string(o.Data) != w.data {
			t.Errorf("%s: %s %v %s, want %s [2 2] %s", o.Name, o.Datatype, o.Shape, o.Data, w.datatype, w.data)
		}
	}
	// Lower-case datatypes are accepted, as KServe servers do.
	body := strings.Replace(typesRequest, `"datatype":"FP32"`, `"datatype":"fp32"`, 1)
	if r := ts.post(t, "/v2/models/types/infer", body); r.status != 200 {
		t.Errorf("lower-case datatype: %d %s", r.status, r.body)
	}
}

func TestRequestedOutputs(t *testing.T) {
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{
		"types": loadModel(t, engine.TensorModelOptions{Name: "types", Path: typesPath(t), Batching: batching}),
	}}, serverOptions{})
	body := strings.TrimSuffix(typesRequest, "}") + `,"outputs":[{"name":"i64_out"},{"name":"flag_out"}]}`
	resp := decodeResponse(t, ts.post(t, "/v2/models/types/infer", body))
	var names []string
	for _, o := range resp.Outputs {
		names = append(names, o.Name)
		if string(o.Data) != typesWant[o.Name].data {
			t.Errorf("%s = %s", o.Name, o.Data)
		}
	}
	if fmt.Sprint(names) != "[i64_out flag_out]" {
		t.Errorf("outputs %v, want [i64_out flag_out] in the order asked", names)
	}
}

// le is little-endian bytes of v.
func le(v any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// typesBinary is typesRequest with every tensor as raw bytes.
var typesBinary = []struct {
	name, datatype string
	data           []byte
}{
	{"f32", "FP32", le([]float32{1.5, -3, 0.25, 1e3})},
	{"f64", "FP64", le([]float64{1.5, -2, 1e300, -0.5})},
	{"i32", "INT32", le([]int32{7, -1, 2147483646, -2147483648})},
	{"i64", "INT64", le([]int64{5, 1 << 40, -3, 1e15})},
	{"flag", "BOOL", []byte{1, 0, 1, 0}},
}

var typesBinaryWant = map[string][]byte{
	"f32_out":  le([]float32{3, -6, 0.5, 2000}),
	"f64_out":  le([]float64{2.5, -1, 1e300, 0.5}),
	"i32_out":  le([]int32{8, 0, 2147483647, -2147483647}),
	"i64_out":  le([]int64{15, 3 << 40, -9, 3e15}),
	"flag_out": {0, 1, 0, 1},
}

// splitBinary checks a binary-extension response and returns its JSON
// header and the outputs' bytes by name (binary outputs only).
func splitBinary(t *testing.T, r reply) (response, map[string][]byte) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	n, err := strconv.Atoi(r.header.Get(kserve.InferenceHeaderLength))
	if err != nil || n > len(r.body) {
		t.Fatalf("%s = %q with a body of %d bytes", kserve.InferenceHeaderLength, r.header.Get(kserve.InferenceHeaderLength), len(r.body))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	resp := decodeResponse(t, reply{200, r.header, r.body[:n]})
	tail := r.body[n:]
	bins := map[string][]byte{}
	for _, o := range resp.Outputs {
		size, ok := o.Parameters["binary_data_size"].(float64)
		if !ok {
			continue
		}
		if o.Data != nil {
			t.Errorf("%s has both data and binary_data_size", o.Name)
		}
		if int(size) > len(tail) {
			t.Fatalf("%s: binary_data_size %v, %d bytes left", o.Name, size, len(tail))
		}
		bins[o.Name], tail = tail[:int(size)], tail[int(size):]
	}
	if len(tail) != 0 {
		t.Errorf("%d unclaimed bytes after the outputs", len(tail))
	}
	return resp, bins
}

func TestBinaryTensorExtension(t *testing.T) {
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{
		"types": loadModel(t, engine.TensorModelOptions{Name: "types", Path: typesPath(t), Batching: batching}),
	}}, serverOptions{})
	// binaryRequest sends the inputs named in asBinary as raw bytes and
	// the rest as JSON; extra goes at the end of the JSON object.
	binaryRequest := func(asBinary map[string]bool, extra string) ([]byte, int) {
		var inputs []string
		var tail []byte
		var jsonData = map[string]string{}
		var plain struct {
			Inputs []struct {
				Name string          `json:"name"`
				Data json.RawMessage `json:"data"`
			} `json:"inputs"`
		}
		json.Unmarshal([]byte(typesRequest), &plain)
		for _, in := range plain.Inputs {
			jsonData[in.Name] = string(in.Data)
		}
		for _, in := range typesBinary {
			if asBinary[in.name] {
				inputs = append(inputs, fmt.Sprintf(`{"name":%q,"shape":[2,2],"datatype":%q,"parameters":{"binary_data_size":%d}}`, in.name, in.datatype, len(in.data)))
				tail = append(tail, in.data...)
			} else {
				inputs = append(inputs, fmt.Sprintf(`{"name":%q,"shape":[2,2],"datatype":%q,"data":%s}`, in.name, in.datatype, jsonData[in.name]))
			}
		}
		header := `{"id":"bin","inputs":[` + strings.Join(inputs, ",") + `]` + extra + `}`
		return append([]byte(header), tail...), len(header)
	}
	send := func(body []byte, n int) reply {
		return ts.do(t, "POST", "/v2/models/types/infer", body, map[string]string{
			kserve.InferenceHeaderLength: strconv.Itoa(n), "Content-Type": "application/octet-stream",
		})
	}

	t.Run("all binary both ways", func(t *testing.T) {
		all := map[string]bool{"f32": true, "f64": true, "i32": true, "i64": true, "flag": true}
		resp, bins := splitBinary(t, send(binaryRequest(all, `,"parameters":{"binary_data_output":true}`)))
		if resp.ID != "bin" || len(bins) != len(typesBinaryWant) {
			t.Fatalf("id %q, %d binary outputs", resp.ID, len(bins))
		}
		for name, want := range typesBinaryWant {
			if !bytes.Equal(bins[name], want) {
				t.Errorf("%s = %x, want %x", name, bins[name], want)
			}
		}
	})
	t.Run("mixed in, JSON out", func(t *testing.T) {
		r := send(binaryRequest(map[string]bool{"f64": true, "flag": true}, ""))
		if r.header.Get(kserve.InferenceHeaderLength) != "" {
			t.Errorf("a JSON-only response has %s", kserve.InferenceHeaderLength)
		}
		for _, o := range decodeResponse(t, r).Outputs {
			if string(o.Data) != typesWant[o.Name].data {
				t.Errorf("%s = %s, want %s", o.Name, o.Data, typesWant[o.Name].data)
			}
		}
	})
	t.Run("JSON in, some outputs binary", func(t *testing.T) {
		body := strings.TrimSuffix(typesRequest, "}") + `,"outputs":[{"name":"i32_out","parameters":{"binary_data":true}},{"name":"f32_out"},{"name":"flag_out","parameters":{"binary_data":true}}]}`
		resp, bins := splitBinary(t, ts.post(t, "/v2/models/types/infer", body))
		if len(resp.Outputs) != 3 || len(bins) != 2 {
			t.Fatalf("%d outputs, %d binary", len(resp.Outputs), len(bins))
		}
		if string(resp.Outputs[1].Data) != typesWant["f32_out"].data {
			t.Errorf("f32_out = %s", resp.Outputs[1].Data)
		}
		for _, name := range []string{"i32_out", "flag_out"} {
			if !bytes.Equal(bins[name], typesBinaryWant[name]) {
				t.Errorf("%s = %x, want %x", name, bins[name], typesBinaryWant[name])
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		all := map[string]bool{"f32": true, "f64": true, "i32": true, "i64": true, "flag": true}
		body, n := binaryRequest(all, "")
		f := func(body []byte, header string, want string) {
			t.Helper()
			r := ts.do(t, "POST", "/v2/models/types/infer", body, map[string]string{kserve.InferenceHeaderLength: header})
			checkError(t, r, 400, "invalid_request_error", "invalid_input", want)
		}
		f(body, strconv.Itoa(len(body)+1), "the body has")
		f(body, "-1", "non-negative integer")
		f(body, "x", "non-negative integer")
		f(append(body[:len(body):len(body)], 0), strconv.Itoa(n), "not claimed by any input")
		f(body[:len(body)-1], strconv.Itoa(n), "bytes left in the body")
		short := bytes.Replace(body, []byte(`"binary_data_size":16}`), []byte(`"binary_data_size":15}`), 1)
		f(short, strconv.Itoa(n), "does not match shape")
		// The JSON header is decoded as strictly as a JSON body.
		bracket := append([]byte(string(body[:n])+"]"), body[n:]...)
		r := ts.do(t, "POST", "/v2/models/types/infer", bracket, map[string]string{kserve.InferenceHeaderLength: strconv.Itoa(n + 1)})
		checkError(t, r, 400, "invalid_request_error", "invalid_json", "trailing data")
	})
}

func TestMetadataAndHealth(t *testing.T) {
	var ready sync.Mutex // held means not ready
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{
		"demo":  loadModel(t, engine.TensorModelOptions{Name: "demo", Path: demoPath(t), Batching: batching}),
		"types": loadModel(t, engine.TensorModelOptions{Name: "types", Path: typesPath(t)}),
	}}, serverOptions{ready: func() bool {
		if ready.TryLock() {
			ready.Unlock()
			return true
		}
		return false
	}})
	f := func(path string, status int, want string) {
		t.Helper()
		r := ts.get(t, path)
		if r.status != status || string(r.body) != want {
			t.Errorf("GET %s = %d %s\nwant %d %s", path, r.status, r.body, status, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("GET %s: no X-Request-Id", path)
		}
	}
	f("/v2/health/live", 200, `{"live":true}`)
	f("/v2/health/ready", 200, `{"ready":true}`)
	f("/v2", 200, `{"extensions":["binary_tensor_data"],"name":"aiassist","version":"test-version"}`)
	demo := `{"name":"demo","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"input","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"output","datatype":"FP32","shape":[-1,3]}]}`
	f("/v2/models/demo", 200, demo)
	f("/v2/models/demo/versions/1", 200, demo)
	f("/v2/models/demo/ready", 200, `{"name":"demo","ready":true}`)
	f("/v2/models/demo/versions/1/ready", 200, `{"name":"demo","ready":true}`)
	f("/v2/models/types", 200, `{"name":"types","versions":["1"],"platform":"onnxruntime_onnx","inputs":[`+
		`{"name":"f32","datatype":"FP32","shape":[-1,2]},{"name":"f64","datatype":"FP64","shape":[-1,2]},`+
		`{"name":"i32","datatype":"INT32","shape":[-1,2]},{"name":"i64","datatype":"INT64","shape":[-1,2]},`+
		`{"name":"flag","datatype":"BOOL","shape":[-1,2]}],"outputs":[`+
		`{"name":"f32_out","datatype":"FP32","shape":[-1,2]},{"name":"f64_out","datatype":"FP64","shape":[-1,2]},`+
		`{"name":"i32_out","datatype":"INT32","shape":[-1,2]},{"name":"i64_out","datatype":"INT64","shape":[-1,2]},`+
		`{"name":"flag_out","datatype":"BOOL","shape":[-1,2]}]}`)
	ready.Lock()
	f("/v2/health/ready", 503, `{"ready":false}`)
	f("/v2/health/live", 200, `{"live":true}`)
	ready.Unlock()
	f("/v2/health/ready", 200, `{"ready":true}`)
	// HEAD is answered like GET, without a body.
	if r := ts.do(t, "HEAD", "/v2/health/live", nil, nil); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD = %d %q", r.status, r.body)
	}
}

// holdingModel waits for a batch to fill for an hour: a request sits in
// its queue, not running, until the model is closed or its deadline passes.
// That makes the queue-full and deadline paths deterministic.
func holdingModel(t *testing.T, name string, set *metrics.Set) *engine.TensorModel {
	m := loadModel(t, engine.TensorModelOptions{Name: name, Path: demoPath(t), Instances: 1, Metrics: set,
		Batching: engine.BatchOptions{Enabled: true, MaxBatchSize: 32, MaxQueueDelay: time.Hour, MaxQueueSize: 1}})
	// The queue waits for company only after a larger batch: run a full
	// one first, so the next single request stays queued for the hour.
	full := engine.Tensor{Name: "input", DataType: engine.FP32, Shape: []int64{32, 4}, Data: make([]byte, 32*4*4)}
	if _, err := m.Infer(context.Background(), []engine.Tensor{full}, nil); err != nil {
		t.Fatal(err)
	}
	return m
}

// queueDepth reads the model's aiassist_queue_depth gauge.
func queueDepth(set *metrics.Set, model string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	prefix := `aiassist_queue_depth{model="` + model + `"} `
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}

func TestQueueFull(t *testing.T) {
	set := metrics.NewSet()
	m := holdingModel(t, "hold", set)
	ts := serve(t, &State{Models: map[string]*engine.TensorModel{"hold": m}}, serverOptions{})
	first := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest("POST", ts.url+"/v2/models/hold/infer", strings.NewReader(inferBody(1, `[1,2,3,4]`)))
		resp, err := ts.client.Do(req)
		if err != nil {
			first <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- reply{resp.StatusCode, resp.Header, b}
	}()
	// Wait until the first request is queued; it stays there.
	waitFor(t, "the first request to be queued", func() bool { return queueDepth(set, "hold") == "1" })
	r := ts.post(t, "/v2/models/hold/infer", inferBody(1, `[1,2,3,4]`))
	checkError(t, r, 503, "overloaded_error", "queue_full", `model "hold": queue is full (batching.max_queue_size 1); retry later, or raise batching.max_queue_size`)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	// Closing the model runs what is queued, so the first request is answered.
	m.Close()
	select {
	case r := <-first:
		if r.status != 200 {
			t.Errorf("the queued request got %d %s", r.status, r.body)
		}
	case <-time.After(testDeadline):
		t.Fatalf("the queued request was not answered within %s of the model's closing", testDeadline)
	}
	// A closed model refuses with 503 too.
	r = ts.post(t, "/v2/models/hold/infer", inferBody(1, `[1,2,3,4]`))
	checkError(t, r, 503, "overloaded_error", "model_unavailable", "unloaded")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
}

func TestDeadlineWhileQueued(t *testing.T) {
	ts := serve(t, &State{RequestTimeout: 20 * time.Millisecond, Models: map[string]*engine.TensorModel{"hold": holdingModel(t, "hold", nil)}}, serverOptions{})
	r := ts.post(t, "/v2/models/hold/infer", inferBody(1, `[1,2,3,4]`))
	checkError(t, r, 504, "timeout_error", "deadline_exceeded", `waited in the queue of model "hold" past its deadline (server.request_timeout 20ms)`)
}

// TestConcurrentBatching is the batching contract over HTTP: 32 clients at
// once get the answers an unbatched model gives for the same inputs, and
// the batch-size histogram shows batches larger than any one request.
func TestConcurrentBatching(t *testing.T) {
	path := demoPath(t)
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	t.Cleanup(func() { metrics.UnregisterSet(set, true) })
	batched := loadModel(t, engine.TensorModelOptions{Name: "batched", Path: path, Instances: 1, Metrics: set,
		Batching: engine.BatchOptions{Enabled: true, MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, MaxQueueSize: 256}})
	alone := loadModel(t, engine.TensorModelOptions{Name: "alone", Path: path, Instances: 1,
		Batching: engine.BatchOptions{Enabled: false, MaxQueueSize: 256}})
	if !batched.Batched() || alone.Batched() {
		t.Fatal("batching is not as configured")
	}
	ts := serve(t, &State{MetricsPath: "/metrics", Models: map[string]*engine.TensorModel{"batched": batched, "alone": alone}}, serverOptions{})
	const clients, requests = 32, 25
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for r := range requests {
				rows := 1 + (c+r)%3
				body := inferBody(rows, nested(rowsInput(rows, 4, c*100+r), 4))
				got := postQuiet(ts, "/v2/models/batched/infer", body)
				want := postQuiet(ts, "/v2/models/alone/infer", body)
				if got.err != nil || want.err != nil {
					t.Errorf("client %d request %d: %v %v", c, r, got.err, want.err)
					return
				}
				if !closeTo(got.data, want.data) || len(got.data) != 3*rows {
					t.Errorf("client %d request %d: batched %v, unbatched %v", c, r, got.data, want.data)
					return
				}
			}
		})
	}
	wg.Wait()
	text := string(ts.get(t, "/metrics").body)
	// A request has at most 3 rows, so a batch of more than 4 (the
	// bucket above 3) holds rows of several requests: with batching off
	// every batch is one request, and this fails.
	le4, count := histogram(t, text, "aiassist_batch_size", "batched", "4")
	if count <= le4 {
		t.Errorf("batch size count %v, le=\"4\" %v: no batch larger than one request can be\n%s", count, le4, text)
	}
	// Fewer batches than requests: requests were really put together.
	if count >= clients*requests {
		t.Errorf("%v batches for %d requests", count, clients*requests)
	}
}

type inferResult struct {
	data []float32
	err  error
}

// postQuiet is post for goroutines other than the test's: it returns
// errors instead of failing.
func postQuiet(ts *testServer, path, body string) inferResult {
	resp, err := ts.client.Post(ts.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		return inferResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return inferResult{err: err}
	}
	if resp.StatusCode != 200 {
		return inferResult{err: fmt.Errorf("status %d: %s", resp.StatusCode, b)}
	}
	var r response
	if err := json.Unmarshal(b, &r); err != nil || len(r.Outputs) != 1 {
		return inferResult{err: fmt.Errorf("response %s: %v", b, err)}
	}
	var v []float32
	if err := json.Unmarshal(r.Outputs[0].Data, &v); err != nil {
		return inferResult{err: err}
	}
	return inferResult{data: v}
}

// histogram returns the bucket le and the count of a histogram series.
func histogram(t *testing.T, text, name, model, le string) (bucket, count float64) {
	t.Helper()
	bucket, count = -1, -1
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+`_bucket{model="`+model+`",le="`+le+`"} `); ok {
			bucket, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, name+`_count{model="`+model+`"} `); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	}
	if bucket < 0 || count < 0 {
		t.Fatalf("no %s{model=%q} histogram with le=%q in\n%s", name, model, le, text)
	}
	return bucket, count
}
