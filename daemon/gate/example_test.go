package gate_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/gate"
)

type header map[string]string

func (h header) Peek(name string) []byte { return []byte(h[strings.ToLower(name)]) }

func Example() {
	key := gate.NewKey() // what `aiassistd keygen` prints; the config keeps only the hash
	g, err := gate.New(gate.Options{
		Keys:     []gate.Key{{Name: "team-a-2026q4", Hash: gate.HashKey(key), Models: []string{"qwen"}}},
		AllowIPs: []string{"127.0.0.0/8"},
	}, slog.New(slog.DiscardHandler), metrics.NewSet())
	if err != nil {
		panic(err)
	}
	req := gate.Request{
		Peer:     netip.MustParseAddr("127.0.0.1"),
		Loopback: true,
		Host:     "localhost:8080",
		Method:   "POST",
		Route:    gate.RouteInference,
		Model:    "qwen",
		Header:   header{"content-type": "application/json", "authorization": "Bearer " + key},
		Body:     []byte(`{"model":"qwen","prompt":"hi"}`),
	}
	p, r := g.Check(req)
	fmt.Println(p.Name, r)

	req.Model = "bert"
	_, r = g.Check(req)
	fmt.Println(r.Status, r.Code, r.Message)
	// Output:
	// team-a-2026q4 <nil>
	// 403 model_not_allowed this credential may not call model "bert"
}
