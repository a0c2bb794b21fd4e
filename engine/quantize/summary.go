package quantize

import (
	"fmt"
	"io"
	"strings"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// Summary says what Model did.
type Summary struct {
	Form       Form
	PerChannel bool
	FullRange  bool
	Rewritten  []Rewritten
	Skipped    []Skipped
	// WeightBytesBefore and WeightBytesAfter are the bytes of the
	// rewritten weights as FP32 and as int8 with their scales.
	WeightBytesBefore, WeightBytesAfter int64
	// FileBytesBefore and FileBytesAfter are the sizes of the model's
	// files (with external data), set by File.
	FileBytesBefore, FileBytesAfter int64

	weights map[string]bool // source weights quantized
	usedMS  bool
}

// Rewritten is a node replaced by its INT8 form.
type Rewritten struct {
	Node, Op, Weight string
	Shape            []int64 // of the weight as multiplied, [in][out]
}

// Skipped is a node that stays FP32, and why.
type Skipped struct {
	Node, Op, Reason string
}

func (s *Summary) rewrite(n *onnxpb.NodeProto, weight string, shape []int64) {
	s.Rewritten = append(s.Rewritten, Rewritten{Node: nodeID(n), Op: n.GetOpType(), Weight: weight, Shape: shape})
}

func (s *Summary) skip(n *onnxpb.NodeProto, reason string) {
	s.Skipped = append(s.Skipped, Skipped{Node: nodeID(n), Op: n.GetOpType(), Reason: reason})
}

func (s *Summary) weight(name string, before, after int64) {
	if s.weights == nil {
		s.weights = map[string]bool{}
	}
	if !s.weights[name] {
		s.WeightBytesBefore += before
	}
	s.weights[name] = true
	s.WeightBytesAfter += after
}

// WriteTo prints the summary for an operator: the nodes rewritten, those
// skipped with why, and the sizes.
func (s *Summary) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	scales := "one scale per weight"
	if s.PerChannel {
		scales = "one scale per output channel"
	}
	levels := "in [-63, 63]"
	if s.FullRange {
		levels = "in [-127, 127]"
	}
	fmt.Fprintf(&b, "rewritten %d nodes to INT8 (MatMul and Gemm as %s, Attention as QAttention; symmetric int8 weights %s, %s):\n", len(s.Rewritten), s.Form, levels, scales)
	for _, r := range s.Rewritten {
		fmt.Fprintf(&b, "  %s (%s): weight %s %v\n", r.Node, r.Op, r.Weight, r.Shape)
	}
	fmt.Fprintf(&b, "skipped %d nodes, kept FP32:\n", len(s.Skipped))
	for _, k := range s.Skipped {
		fmt.Fprintf(&b, "  %s (%s): %s\n", k.Node, k.Op, k.Reason)
	}
	fmt.Fprintf(&b, "weights: %s FP32 -> %s INT8\n", size(s.WeightBytesBefore), size(s.WeightBytesAfter))
	if s.FileBytesBefore > 0 {
		fmt.Fprintf(&b, "model: %s -> %s\n", size(s.FileBytesBefore), size(s.FileBytesAfter))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func (s *Summary) String() string {
	var b strings.Builder
	s.WriteTo(&b)
	return b.String()
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}
