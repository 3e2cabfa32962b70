package httpsyntax

import (
	"bytes"
	"net/netip"
)

// maxHostLen bounds a host name (RFC 1035 allows 253 bytes, plus a port).
const maxHostLen = 261

// ValidHost reports whether h is an authority the gateway routes on:
// a host name or IPv4 address made of letters, digits, '-', '.', '_' and
// '~', or a bracketed IPv6 address, optionally followed by ':' and a port
// of 1 to 5 digits no larger than 65535. Userinfo ("user:pass@"),
// percent-encoding and every other delimiter are refused: an authority
// holding them is read differently by different parsers (fasthttp turns
// userinfo into an Authorization header, for one). Empty is not valid.
func ValidHost(h []byte) bool {
	if len(h) == 0 || len(h) > maxHostLen {
		return false
	}
	host, port := h, []byte(nil)
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		host, port = h[:end+1], h[end+1:]
		if len(port) > 0 && port[0] != ':' {
			return false
		}
		// Rare enough that parsing it with netip is fine.
		if a, err := netip.ParseAddr(string(host[1:end])); err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
	} else {
		if i := bytes.IndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i:]
		}
		if len(host) == 0 {
			return false
		}
		for _, c := range host {
			if class[c]&classRegName == 0 {
				return false
			}
		}
	}
	if len(port) == 0 {
		return true
	}
	port = port[1:]
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
