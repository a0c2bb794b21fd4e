package gate

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Screening runs before any model work: pure functions over header
// values and the body, each returning nil or a Refusal.

// DefaultMaxJSONDepth bounds the nesting of objects and arrays.
const DefaultMaxJSONDepth = 64

// CheckContentType accepts application/json with optional parameters
// (charset must then be utf-8), case-insensitively; anything else is 415.
// Refusing text/plain and form types also stops the cross-site "simple"
// POSTs a browser sends without a preflight.
func CheckContentType(ct []byte) *Refusal {
	mt, params, _ := bytes.Cut(ct, []byte{';'})
	if !bytes.EqualFold(bytes.TrimSpace(mt), []byte("application/json")) {
		return refuse(415, typeInvalidRequest, "unsupported_media_type", "Content-Type must be application/json (got "+echoOrNone(ct)+")")
	}
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte{';'})
		name, value, _ := bytes.Cut(p, []byte{'='})
		if !bytes.EqualFold(bytes.TrimSpace(name), []byte("charset")) {
			continue
		}
		v := bytes.Trim(bytes.TrimSpace(value), `"`)
		if !bytes.EqualFold(v, []byte("utf-8")) && !bytes.EqualFold(v, []byte("utf8")) {
			return refuse(415, typeInvalidRequest, "unsupported_media_type", "JSON must be UTF-8 (got charset "+echo(string(v))+")")
		}
	}
	return nil
}

// CheckContentEncoding accepts no Content-Encoding or identity: a
// compressed body would otherwise be read as garbage.
func CheckContentEncoding(ce []byte) *Refusal {
	v := bytes.TrimSpace(ce)
	if len(v) == 0 || bytes.EqualFold(v, []byte("identity")) {
		return nil
	}
	return refuse(415, typeInvalidRequest, "unsupported_encoding", "Content-Encoding "+echo(string(v))+" is not supported; send the body uncompressed")
}

// ScanError says where a JSON body breaks a screening rule.
type ScanError struct {
	Offset int    // byte offset in the body
	Code   string // "invalid_utf8" or "json_too_deep"
	msg    string
}

func (e *ScanError) Error() string { return e.msg }

// ScanJSON checks, in one pass, that every JSON string in b is valid
// UTF-8 without lone surrogate escapes, and that objects and arrays nest
// at most maxDepth deep (0 means DefaultMaxJSONDepth). Go's decoder would
// otherwise replace bad text with U+FFFD without a word. It is not a
// validator: other syntax errors are left to the decoder.
func ScanJSON(b []byte, maxDepth int) *ScanError {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxJSONDepth
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !structural[c] {
			continue
		}
		switch c {
		case '{', '[':
			depth++
			if depth > maxDepth {
				return &ScanError{Offset: i, Code: "json_too_deep", msg: fmt.Sprintf("JSON nests deeper than %d levels at byte %d", maxDepth, i)}
			}
		case '}', ']':
			depth--
		case '"':
			end, err := scanString(b, i+1)
			if err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

// structural marks the bytes ScanJSON acts on outside strings, special
// those it acts on inside them.
var structural, special [256]bool

func init() {
	for _, c := range []byte(`{}[]"`) {
		structural[c] = true
	}
	special['"'], special['\\'] = true, true
	for c := utf8.RuneSelf; c < 256; c++ {
		special[c] = true
	}
}

func invalidUTF8(i int) *ScanError {
	return &ScanError{Offset: i, Code: "invalid_utf8", msg: fmt.Sprintf("invalid UTF-8 in a JSON string at byte %d; send text as UTF-8", i)}
}

// scanString checks the string whose body starts at i and returns the
// offset of its closing quote (or len(b) when it is not closed).
func scanString(b []byte, i int) (int, *ScanError) {
	for i < len(b) {
		// Plain ASCII text is most of a request: skip it in a tight loop.
		for i < len(b) && !special[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i, nil
		case c == '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				n, err := scanEscape(b, i)
				if err != nil {
					return 0, err
				}
				i = n
				continue
			}
			// Skip the escaped byte, unless it starts a multi-byte
			// character, which the next round checks.
			if i+1 < len(b) && b[i+1] >= utf8.RuneSelf {
				i++
			} else {
				i += 2
			}
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, invalidUTF8(i)
			}
			i += size
		}
	}
	return len(b), nil
}

// scanEscape reads \uXXXX at i and, for a high surrogate, the low one
// that must follow; it returns the offset after them.
func scanEscape(b []byte, i int) (int, *ScanError) {
	r, ok := hex4(b, i+2)
	if !ok {
		return i + 2, nil // malformed escape: the decoder reports it
	}
	switch {
	case r >= 0xD800 && r < 0xDC00:
		if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
			if lo, ok := hex4(b, i+8); ok && lo >= 0xDC00 && lo < 0xE000 {
				return i + 12, nil
			}
		}
		return 0, &ScanError{Offset: i, Code: "invalid_utf8", msg: fmt.Sprintf("unpaired surrogate escape in a JSON string at byte %d; send text as UTF-8", i)}
	case r >= 0xDC00 && r < 0xE000:
		return 0, &ScanError{Offset: i, Code: "invalid_utf8", msg: fmt.Sprintf("unpaired surrogate escape in a JSON string at byte %d; send text as UTF-8", i)}
	}
	return i + 6, nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// CheckJSONBody turns ScanJSON's verdict into a Refusal.
func CheckJSONBody(b []byte, maxDepth int) *Refusal {
	if err := ScanJSON(b, maxDepth); err != nil {
		return refuse(400, typeInvalidRequest, err.Code, err.msg)
	}
	return nil
}

// HostList is server.allowed_hosts, ready for matching: names compare
// case-insensitively, with or without a port; "*.example.com" matches
// any name under example.com.
type HostList struct {
	exact    []string // lowercase, as given (with or without port)
	suffixes []string // ".example.com" from "*.example.com"
}

// ParseHostList reads server.allowed_hosts.
func ParseHostList(hosts []string) (HostList, error) {
	var l HostList
	for i, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/ \t") {
			return HostList{}, fmt.Errorf("entry %d %s: want a host name, optionally with a port, like api.example.com or *.example.com", i, echo(hosts[i]))
		}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			if rest == "" || strings.Contains(rest, "*") {
				return HostList{}, fmt.Errorf("entry %d %s: a wildcard is only allowed as the first label (*.example.com)", i, echo(hosts[i]))
			}
			l.suffixes = append(l.suffixes, "."+rest)
			continue
		}
		if strings.Contains(h, "*") {
			return HostList{}, fmt.Errorf("entry %d %s: a wildcard is only allowed as the first label (*.example.com)", i, echo(hosts[i]))
		}
		l.exact = append(l.exact, h)
	}
	return l, nil
}

// Len is the number of entries.
func (l HostList) Len() int { return len(l.exact) + len(l.suffixes) }

// splitHost splits a Host header value into name and port; a bracketed
// IPv6 name loses its brackets. ok is false for a malformed value.
func splitHost(h string) (name, port string, ok bool) {
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		name, rest := h[1:end], h[end+1:]
		if rest == "" {
			return name, "", true
		}
		if rest[0] != ':' {
			return "", "", false
		}
		return name, rest[1:], validPort(rest[1:])
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if strings.IndexByte(h, ':') != i {
			// Unbracketed IPv6 is not a valid Host; read it whole.
			return h, "", true
		}
		return h[:i], h[i+1:], validPort(h[i+1:])
	}
	return h, "", true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func (l HostList) match(host, name string) bool {
	for _, e := range l.exact {
		if strings.EqualFold(e, host) || strings.EqualFold(e, name) {
			return true
		}
	}
	for _, s := range l.suffixes {
		if len(name) > len(s) && strings.EqualFold(name[len(name)-len(s):], s) {
			return true
		}
	}
	return false
}

// isLoopbackName tells whether a Host name is localhost or a loopback
// address.
func isLoopbackName(name string) bool {
	if strings.EqualFold(name, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// CheckHost guards against DNS rebinding: a page on evil.example whose
// name is made to resolve to 127.0.0.1 sends Host: evil.example. On a
// loopback listener only localhost, loopback addresses and allowed are
// accepted; elsewhere allowed, when it has entries.
func CheckHost(host string, loopback bool, allowed HostList) *Refusal {
	name, _, ok := splitHost(host)
	if ok {
		if loopback && isLoopbackName(name) {
			return nil
		}
		if !loopback && allowed.Len() == 0 {
			return nil
		}
		if allowed.match(host, name) {
			return nil
		}
	}
	return refuse(403, typePermission, "host_not_allowed", "Host "+echo(host)+" is not accepted on this listener; if it is a name of this server, add it to server.allowed_hosts")
}
