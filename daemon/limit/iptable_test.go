package limit

import (
	"net/netip"
	"runtime"
	"testing"
)

func TestClientKey(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := ClientKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("ClientKey(%s) = %s, want %s", in, got, want)
		}
	}
	f("192.0.2.1", "192.0.2.1")
	f("::ffff:192.0.2.1", "192.0.2.1")
	f("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::")
	f("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::")
	f("fe80::1%eth0", "fe80::")
	f("::1", "::")
	if got := ClientKey(netip.Addr{}); got.IsValid() {
		t.Errorf("ClientKey(zero) = %s, want the zero Addr", got)
	}
}

// TestIPv6Prefix: the addresses of one /64 share one bucket; another /64
// has its own.
func TestIPv6Prefix(t *testing.T) {
	l := mustNew(t, Options{PerIP: Rate{PerSecond: 1, Burst: 3}, Now: newClock().Now}, nil)
	admitted := 0
	for i := range 100 {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 8: byte(i), 15: byte(i * 7)})
		if _, ref := l.Admit(Request{IP: ip}); ref == nil {
			admitted++
		} else if ref.Reason != ReasonIP {
			t.Fatalf("refusal %+v, want reason ip", ref)
		}
	}
	if admitted != 3 {
		t.Errorf("100 addresses of one /64: %d admitted, want the burst of 3", admitted)
	}
	if n := l.ips.tracked(); n != 1 {
		t.Errorf("one /64 tracked as %d keys", n)
	}
	if _, ref := l.Admit(Request{IP: netip.MustParseAddr("2001:db8:0:8::1")}); ref != nil {
		t.Errorf("another /64 was refused: %v", ref)
	}
	// An IPv4 client and its IPv4-mapped form are one client.
	for range 3 {
		l.Admit(Request{IP: netip.MustParseAddr("192.0.2.1")})
	}
	if _, ref := l.Admit(Request{IP: netip.MustParseAddr("::ffff:192.0.2.1")}); ref == nil {
		t.Error("an IPv4-mapped address got a bucket of its own")
	}
}

// TestIPTableBounded: a flood of distinct addresses keeps the table at its
// cap, and the memory it holds does not grow with the flood.
func TestIPTableBounded(t *testing.T) {
	const max = 1000
	l := mustNew(t, Options{PerIP: Rate{PerSecond: 1, Burst: 1}, MaxTrackedIPs: max, Now: newClock().Now}, nil)
	flood := func(from, n int) {
		for i := from; i < from+n; i++ {
			if _, ref := l.Admit(Request{IP: v4(i)}); ref != nil {
				t.Fatalf("a new address was refused: %v", ref)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	flood(0, 10*max)
	if n := l.ips.tracked(); n > max || n < max*9/10 {
		t.Fatalf("after %d addresses: %d tracked, want at most %d and near it", 10*max, n, max)
	}
	before := heap()
	flood(10*max, 50*max)
	after := heap()
	if n := l.ips.tracked(); n > max {
		t.Fatalf("after %d addresses: %d tracked, want at most %d", 60*max, n, max)
	}
	// 50 000 more addresses at ~220 bytes an entry would be ~11 MB if
	// kept; the table's own cap is ~200 kB.
	if after > before+2<<20 {
		t.Errorf("heap grew from %d to %d bytes under a flood of distinct addresses", before, after)
	}
	t.Logf("heap %d -> %d bytes with %d addresses tracked", before, after, l.ips.tracked())

	// The most recently seen address is still tracked: its bucket is spent.
	if _, ref := l.Admit(Request{IP: v4(60*max - 1)}); ref == nil {
		t.Error("the most recent address was evicted")
	}
}

// TestIPTableLRU: a client seen often stays tracked while others come and
// go, so its spent bucket is not refilled by eviction.
func TestIPTableLRU(t *testing.T) {
	tb := newIPTable(Rate{PerSecond: 1, Burst: 1}, 4)
	if len(tb.shards) != 1 {
		t.Fatalf("%d shards for 4 entries", len(tb.shards))
	}
	now := newClock().Now()
	regular := netip.MustParseAddr("192.0.2.1")
	if !tb.bucket(regular).lim.AllowN(now, 1) {
		t.Fatal("fresh bucket empty")
	}
	for i := range 100 {
		tb.bucket(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
		if tb.bucket(regular).lim.AllowN(now, 1) {
			t.Fatalf("after %d other clients the regular one was evicted and refilled", i+1)
		}
	}
	if n := tb.tracked(); n != 4 {
		t.Errorf("%d tracked, want 4", n)
	}
}

func TestIPTableShards(t *testing.T) {
	f := func(max, shards int) {
		t.Helper()
		tb := newIPTable(Rate{PerSecond: 1, Burst: 1}, max)
		total := 0
		for i := range tb.shards {
			total += tb.shards[i].max
		}
		if len(tb.shards) != shards || total > max || total < max-shards {
			t.Errorf("max %d: %d shards holding %d, want %d shards holding at most %d", max, len(tb.shards), total, shards, max)
		}
	}
	f(1, 1)
	f(127, 1)
	f(128, 2)
	f(1000, 8)
	f(DefaultMaxTrackedIPs, 16)
}

func v4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}
