// Command bodies writes the request bodies examples/bench/run.sh sends: one
// row of each benchmark model's input as KServe v2 JSON and as the binary
// tensor extension.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"log"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aiassist/aiassist/engine/modelgen"
)

func main() {
	out := flag.String("out", "build/bench", "output folder")
	flag.Parse()
	for name, width := range map[string]int{"big-mlp": modelgen.BigMLPSizes[0], "demo-mlp": modelgen.DemoMLPSizes[0]} {
		x := make([]float32, width)
		for i := range x {
			x[i] = float32(i%17)/8 - 1
		}
		js, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "input", "shape": []int{1, width}, "datatype": "FP32", "data": x}}})
		if err != nil {
			log.Fatal(err)
		}
		write(*out, name+".json", js)
		header, _ := json.Marshal(map[string]any{
			"inputs":     []any{map[string]any{"name": "input", "shape": []int{1, width}, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": 4 * width}}},
			"parameters": map[string]any{"binary_data_output": true},
		})
		body := append([]byte(nil), header...)
		for _, v := range x {
			body = binary.LittleEndian.AppendUint32(body, math.Float32bits(v))
		}
		write(*out, name+".bin", body)
		write(*out, name+".bin.hlen", []byte(strconv.Itoa(len(header))))
	}
}

func write(dir, name string, b []byte) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		log.Fatal(err)
	}
}
