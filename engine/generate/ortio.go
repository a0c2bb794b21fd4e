package generate

import (
	"fmt"
	"slices"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// runOutput is what one step of the decoder gives back.
type runOutput struct {
	logits     [][]float32 // the last position's logits, by batch row
	present    []ort.Value // the next past, owned by the caller
	presentLen int
}

// runModel runs one step: ids and pos have one row per sequence, all of
// the same length; past (nil for an empty one) has pastLen positions of
// which the first pads[i] of row i are padding (nil pads: none). rows maps
// a sequence to its logits row.
func (l *lane) runModel(ids, pos [][]int, past []ort.Value, pastLen int, rows, pads []int) (runOutput, error) {
	in, owned, err := l.m.inputs(ids, pos, past, pastLen, pads)
	defer destroyAll(owned)
	if err != nil {
		return runOutput{}, err
	}
	out, err := l.m.outputTensors(len(ids), len(ids[0]), pastLen)
	if err != nil {
		return runOutput{}, err
	}
	if out == nil {
		out = make([]ort.Value, len(l.m.io.outputNames))
	}
	if err := l.sess.Run(in, out); err != nil {
		destroyAll(out)
		return runOutput{}, fmt.Errorf("model %q: %w", l.m.opts.Name, err)
	}
	return l.m.outputs(out, len(ids), len(ids[0]), rows)
}

// inputs builds the decoder's inputs in io.inputNames order. owned are the
// tensors made here, for the caller to destroy after the run; past's
// tensors are used as they are.
func (m *Model) inputs(ids, pos [][]int, past []ort.Value, pastLen int, pads []int) (in, owned []ort.Value, err error) {
	io := m.io
	b, n := len(ids), len(ids[0])
	in = make([]ort.Value, len(io.inputNames))
	add := func(i int, v ort.Value, err error) error {
		if err != nil {
			return err
		}
		owned = append(owned, v)
		in[i] = v
		return nil
	}
	v, err := intTensor(io.idsType, ort.NewShape(int64(b), int64(n)), slices.Concat(ids...))
	if err := add(io.ids, v, err); err != nil {
		return nil, owned, err
	}
	total := pastLen + n
	mask := make([]int, b*total)
	for i := range b {
		pad := 0
		if pads != nil {
			pad = pads[i]
		}
		for j := pad; j < total; j++ {
			mask[i*total+j] = 1
		}
	}
	v, err = intTensor(io.maskType, ort.NewShape(int64(b), int64(total)), mask)
	if err := add(io.mask, v, err); err != nil {
		return nil, owned, err
	}
	if io.pos >= 0 {
		v, err := intTensor(io.posType, ort.NewShape(int64(b), int64(n)), slices.Concat(pos...))
		if err := add(io.pos, v, err); err != nil {
			return nil, owned, err
		}
	}
	if io.useCacheBranch >= 0 {
		v, err := ort.NewTensor(ort.NewShape(1), []bool{past != nil})
		if err := add(io.useCacheBranch, v, err); err != nil {
			return nil, owned, err
		}
	}
	if past != nil {
		for j, k := range io.past {
			in[k] = past[j]
		}
		return in, owned, nil
	}
	shape := slices.Clone(io.pastShape)
	shape[io.batchAxis] = int64(b)
	shape[io.seqAxis] = 0
	for _, k := range io.past {
		v, err := newFloatTensor(io.cacheType, shape, nil)
		if err := add(k, v, err); err != nil {
			return nil, owned, err
		}
	}
	return in, owned, nil
}

// outputs takes the run's outputs: it keeps the present tensors for the
// caller, checks them and the logits of a batch of b rows of n tokens,
// and destroys the rest.
func (m *Model) outputs(out []ort.Value, b, n int, rows []int) (runOutput, error) {
	io := m.io
	res := runOutput{present: make([]ort.Value, len(io.present))}
	for j, k := range io.present {
		res.present[j] = out[k]
		out[k] = nil
	}
	defer destroyAll(out)
	fail := func(err error) (runOutput, error) {
		destroyAll(res.present)
		return runOutput{}, fmt.Errorf("model %q: %w", m.opts.Name, err)
	}
	lt := out[io.logits]
	raw, err := floatBytes(lt)
	if err != nil {
		return fail(fmt.Errorf("logits: %w", err))
	}
	// Float32 rows point into the logits tensor's Go memory, which
	// outlives Destroy (that only releases the ORT value); float16 rows
	// are widened into new slices.
	var data []float32
	if io.logitsType == ort.TensorElementDataTypeFloat {
		data = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/4)
	}
	shape := lt.GetShape()
	rowsIn, seqLen, v := int(shape[0]), 1, int(shape[len(shape)-1])
	if len(shape) == 3 {
		seqLen = int(shape[1])
	}
	if v != m.vocab || seqLen < 1 {
		return fail(fmt.Errorf("logits have shape %v, want [%d, %d, %d]", shape, b, n, m.vocab))
	}
	for _, r := range rows {
		if r >= rowsIn {
			return fail(fmt.Errorf("logits have shape %v for a batch of %d", shape, b))
		}
		off := (r*seqLen + seqLen - 1) * v
		if data != nil {
			res.logits = append(res.logits, data[off:off+v:off+v])
			continue
		}
		row := make([]float32, v)
		halfToFloat(row, raw[2*off:2*(off+v)])
		res.logits = append(res.logits, row)
	}
	ps := res.present[0].GetShape()
	if len(ps) != len(io.pastShape) {
		return fail(fmt.Errorf("present has shape %v", ps))
	}
	res.presentLen = int(ps[io.seqAxis])
	for _, p := range res.present {
		if _, err := floatBytes(p); err != nil {
			return fail(fmt.Errorf("present: %w", err))
		}
	}
	return res, nil
}

func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}

func intTensor(dt ort.TensorElementDataType, shape ort.Shape, vals []int) (ort.Value, error) {
	if dt == ort.TensorElementDataTypeInt32 {
		d := make([]int32, len(vals))
		for i, v := range vals {
			d[i] = int32(v)
		}
		return ort.NewTensor(shape, d)
	}
	d := make([]int64, len(vals))
	for i, v := range vals {
		d[i] = int64(v)
	}
	return ort.NewTensor(shape, d)
}
