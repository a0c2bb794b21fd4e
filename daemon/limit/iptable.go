package limit

import (
	"hash/maphash"
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// DefaultMaxTrackedIPs is how many client addresses the per-IP limit
// tracks when Options.MaxTrackedIPs is 0. An entry costs about 220 bytes
// (measured), so the table stays below about 14 MiB however many
// addresses send.
const DefaultMaxTrackedIPs = 65536

// ClientKey returns the key a client address is limited by: an IPv4
// address (also when written as IPv4-mapped IPv6) as itself, an IPv6
// address as its /64 prefix, without zone. A /64 is the smallest block an
// ISP assigns to one host or LAN, and a host picks any address inside it
// freely (privacy extensions), so keying by the full address would let one
// client mint an unlimited number of fresh buckets.
func ClientKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64) // 64 is within an IPv6 address, so no error.
		return p.Addr()
	}
	return ip
}

// ipTable holds one bucket per client key, at most max of them. It is
// split into shards, each with its own lock and its own least recently
// used list, so that parallel requests from different clients rarely wait
// for each other; eviction is least recently used within a shard. An
// evicted client starts again with a full bucket, which is no worse than
// an idle client whose bucket has refilled: the global limit is what holds
// a flood from many addresses.
type ipTable struct {
	rate   Rate
	max    int
	seed   maphash.Seed
	shards []ipShard
}

type ipShard struct {
	mu   sync.Mutex
	m    map[netip.Addr]*ipEntry
	head ipEntry // sentinel: head.next is the most recently used entry
	max  int
}

type ipEntry struct {
	key        netip.Addr
	b          bucket
	prev, next *ipEntry
}

func newIPTable(r Rate, max int) *ipTable {
	n := 1
	for n < 16 && max/(n*2) >= 64 {
		n *= 2
	}
	t := &ipTable{rate: r, max: max, seed: maphash.MakeSeed(), shards: make([]ipShard, n)}
	for i := range t.shards {
		s := &t.shards[i]
		s.max = max / n
		s.m = make(map[netip.Addr]*ipEntry)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return t
}

// bucket returns the bucket of the client at ip, creating it (and
// evicting the shard's least recently used one if the shard is full).
func (t *ipTable) bucket(ip netip.Addr) *bucket {
	key := ClientKey(ip)
	s := &t.shards[0]
	if len(t.shards) > 1 {
		s = &t.shards[maphash.Comparable(t.seed, key)&uint64(len(t.shards)-1)]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e != nil {
		if s.head.next != e {
			e.unlink()
			s.pushFront(e)
		}
		return &e.b
	}
	if len(s.m) >= s.max {
		old := s.head.prev
		old.unlink()
		delete(s.m, old.key)
	}
	// A new entry, not the evicted one reused: a ticket may still point at
	// the evicted bucket to report its headers.
	e = &ipEntry{key: key, b: bucket{rate: t.rate, lim: rate.NewLimiter(rate.Limit(t.rate.PerSecond), t.rate.Burst)}}
	s.m[key] = e
	s.pushFront(e)
	return &e.b
}

// tracked returns how many client keys the table holds.
func (t *ipTable) tracked() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *ipShard) pushFront(e *ipEntry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (e *ipEntry) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}
