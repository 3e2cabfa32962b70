package server

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// clientIP appends the client's address as text: the peer's, or, behind
// trusted proxies, the one their X-Forwarded-For names.
func clientIP(ctx *fasthttp.RequestCtx, trusted []netip.Prefix, dst []byte) []byte {
	var peer netip.Addr
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(tcp.IP)
		peer = peer.Unmap()
	}
	if len(trusted) > 0 {
		peer = clientAddr(peer, ctx.Request.Header.Peek("X-Forwarded-For"), trusted)
	}
	if !peer.IsValid() {
		return dst
	}
	return peer.AppendTo(dst)
}

// clientAddr finds the client address: the peer, unless the peer is a trusted
// proxy, in which case X-Forwarded-For is walked right to left and the first
// address that is not a trusted proxy is the client.
func clientAddr(peer netip.Addr, xff []byte, trusted []netip.Prefix) netip.Addr {
	if len(trusted) == 0 || !inPrefixes(peer, trusted) {
		return peer
	}
	client := peer
	for end := len(xff); end > 0; {
		start := end - 1
		for start >= 0 && xff[start] != ',' {
			start--
		}
		field := httpsyntax.TrimOWS(xff[start+1 : end])
		end = start
		addr, err := netip.ParseAddr(string(field))
		if err != nil {
			return client
		}
		addr = addr.Unmap()
		client = addr
		if !inPrefixes(addr, trusted) {
			return addr
		}
	}
	return client
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
