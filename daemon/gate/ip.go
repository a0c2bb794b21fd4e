package gate

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// IPList is a set of networks: access.allow_ips, a key's allow_ips or
// access.trusted_proxies. The zero IPList is empty.
type IPList struct {
	prefixes []netip.Prefix
}

// ParseIPList reads CIDR networks ("10.0.0.0/8", "fd00::/8") and bare
// addresses ("192.0.2.7", "::1"). Host bits set in a network are cleared;
// IPv4-mapped IPv6 forms are read as IPv4.
func ParseIPList(entries []string) (IPList, error) {
	var l IPList
	for i, e := range entries {
		p, err := parsePrefix(strings.TrimSpace(e))
		if err != nil {
			return IPList{}, fmt.Errorf("entry %d %s: want an address or a CIDR network like 10.0.0.0/8 or fd00::/8", i, echo(e))
		}
		l.prefixes = append(l.prefixes, p)
	}
	return l, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.ContainsRune(s, '/') {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a := p.Addr()
		if a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("mapped prefix shorter than /96")
			}
			return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("zone not allowed")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Len is the number of networks in the list.
func (l IPList) Len() int { return len(l.prefixes) }

// Contains tells whether a is in one of the networks. a should be
// normalised with NormalizeAddr.
func (l IPList) Contains(a netip.Addr) bool {
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// NormalizeAddr unmaps IPv4-mapped IPv6 and drops any zone, so that
// ::ffff:10.1.2.3 matches 10.0.0.0/8.
func NormalizeAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// maxHops bounds the X-Forwarded-For entries read; a chain of more
// trusted proxies than this is treated as malformed.
const maxHops = 32

// ClientIP returns the address a request comes from. X-Forwarded-For
// (xff, its values joined by commas) is believed only when the peer is a
// trusted proxy, and then the rightmost entry that is not a trusted proxy
// is the client: entries left of it were written by the client and may be
// forged. A malformed header, or one longer than maxHops, is ignored and
// the peer is the client.
func ClientIP(peer netip.Addr, xff []byte, trusted IPList) netip.Addr {
	peer = NormalizeAddr(peer)
	if len(xff) == 0 || trusted.Len() == 0 || !trusted.Contains(peer) {
		return peer
	}
	rest := xff
	client := peer
	for hops := 0; ; hops++ {
		if hops == maxHops {
			return peer
		}
		var entry []byte
		if i := bytes.LastIndexByte(rest, ','); i >= 0 {
			entry, rest = rest[i+1:], rest[:i]
		} else {
			entry, rest = rest, nil
		}
		a, ok := parseHop(bytes.TrimSpace(entry))
		if !ok {
			return peer
		}
		client = a
		if !trusted.Contains(a) {
			return a
		}
		if rest == nil {
			// Every hop is a trusted proxy: the leftmost is the client.
			return client
		}
	}
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with
// a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	s := string(b)
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
