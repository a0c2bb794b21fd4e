package schema

import (
	"net/netip"
	"strconv"
)

// checkListeners reports listeners that would fail to bind because an
// earlier one holds the same port on the same or an overlapping address.
func (c *checker) checkListeners(ls []Listener) {
	for i, l := range ls {
		for j := range i {
			overlap, same := overlaps(ls[j], l)
			if !overlap {
				continue
			}
			path := []string{"listeners", strconv.Itoa(i)}
			if same {
				c.errorf(path, "duplicate listener %q: listeners.%d already listens there; remove one or change its port", l.HostPort(), j)
			} else {
				c.errorf(path, "listener %q overlaps listeners.%d (%q) on the same port; change one port", l.HostPort(), j, ls[j].HostPort())
			}
		}
	}
}

// addrInfo is what a listen address binds on its port: every address (IPv4
// and IPv6), every IPv4 address, or one address.
type addrInfo struct {
	all, allV4 bool
	addr       netip.Addr
}

func parseAddr(s string) addrInfo {
	switch s {
	case "":
		return addrInfo{all: true}
	case "localhost":
		// net.Listen binds only the first address a name resolves to,
		// and Go resolves "localhost" to 127.0.0.1 first.
		return addrInfo{addr: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return addrInfo{} // the schema admits only IP literals here
	}
	a = a.Unmap()
	switch {
	case a == netip.IPv6Unspecified():
		// Go listens dual-stack on "::", taking IPv4 as well.
		return addrInfo{all: true}
	case a == netip.IPv4Unspecified():
		return addrInfo{allV4: true}
	}
	return addrInfo{addr: a}
}

// overlaps reports whether two listeners cannot both bind, and if so
// whether they name the same address.
func overlaps(a, b Listener) (overlap, same bool) {
	if a.Port != b.Port {
		return false, false
	}
	x, y := parseAddr(a.Address), parseAddr(b.Address)
	switch {
	case x == y:
		return true, true
	case x.all || y.all:
		return true, false
	case x.allV4:
		return y.addr.Is4(), false
	case y.allV4:
		return x.addr.Is4(), false
	}
	return false, false
}
