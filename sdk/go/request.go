package wasmgate

import (
	"math"
	"strings"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// Request is the request being handled. It holds no data: every method is a
// host call, so a plugin pays only for what it reads, and a body is never
// copied into the plugin unless it asks for it.
//
// In OnRequest every method works. In OnResponse the request is the one sent
// upstream and is read-only: setters return ErrNotAllowed.
//
// Getters that return a plain value (Method, Path, ...) return the zero
// value when the host refuses the call, which happens only outside a
// request or response hook.
type Request struct{ _ [0]func() }

// Response is the response being handled: the upstream's in OnResponse, or
// the local response made by SendResponse in OnRequest.
type Response struct{ _ [0]func() }

// Method is the request method, e.g. "GET".
func (*Request) Method() string {
	s, _ := readString(abi.FuncRequestMethod, hostRequestMethod)
	return s
}

// Path is the path without the query, in the gateway's canonical form (the
// one the route matched and the upstream receives: dot segments resolved,
// unreserved characters decoded, every other byte percent-encoded). In
// OnResponse it is the path sent upstream, after the route's rewrite.
func (*Request) Path() string {
	s, _ := readString(abi.FuncRequestPath, hostRequestPath)
	return s
}

// SetPath replaces the path sent upstream. It must start with "/". If path
// contains "?", what follows replaces the query too ("/p?" clears it);
// otherwise the query is kept.
func (*Request) SetPath(path string) error {
	return codeErr(abi.FuncRequestSetPath, hostRequestSetPath(path))
}

// Query is the raw query string, without "?" ("" when none).
func (*Request) Query() string {
	s, _ := readString(abi.FuncRequestQuery, hostRequestQuery)
	return s
}

// QueryParam returns the first value of the query parameter name,
// unescaped, and whether it is present.
func (r *Request) QueryParam(name string) (string, bool) {
	return queryParam(r.Query(), name)
}

// queryParam finds name in a raw query without building a map.
func queryParam(query, name string) (string, bool) {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, ok := queryUnescape(k); !ok || uk != name {
				continue
			}
		}
		if uv, ok := queryUnescape(v); ok {
			return uv, true
		}
		return v, true
	}
	return "", false
}

// queryUnescape decodes "+" and %XX like url.QueryUnescape (net/url is not
// linked: its dependencies add package initialisation to every instance).
func queryUnescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", false
			}
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// ClientIP is the client's address as text, after the gateway's
// trusted-proxy processing.
func (*Request) ClientIP() string {
	s, _ := readString(abi.FuncRequestClientIP, hostRequestClientIP)
	return s
}

// Header returns the first value of the header (name is case-insensitive)
// and whether it is present.
func (*Request) Header(name string) (string, bool) { return headerGet(abi.KindRequest, name) }

// HeaderValues returns every value of the header, nil when absent.
func (*Request) HeaderValues(name string) []string { return headerValues(abi.KindRequest, name) }

// HeaderNames returns the names of the request's headers, each once.
func (*Request) HeaderNames() []string { return headerNames(abi.KindRequest) }

// SetHeader replaces every value of the header with value.
func (*Request) SetHeader(name, value string) error { return headerSet(abi.KindRequest, name, value) }

// AddHeader adds a value to the header.
func (*Request) AddHeader(name, value string) error { return headerAdd(abi.KindRequest, name, value) }

// RemoveHeader removes every value of the header; absent is not an error.
func (*Request) RemoveHeader(name string) error { return headerRemove(abi.KindRequest, name) }

// Body returns a copy of the whole request body.
func (*Request) Body() ([]byte, error) { return body(abi.KindRequest) }

// BodyRange copies the body bytes from offset into buf and returns how many
// it copied and the body's full size. Only those bytes cross into the
// plugin, so a plugin can sniff a prefix of a large body cheaply.
func (*Request) BodyRange(offset int64, buf []byte) (n int, size int64, err error) {
	return bodyRange(abi.KindRequest, offset, buf)
}

// SetBody replaces the request body (and its Content-Length). It fails
// with ErrTooLarge over the route's body limit.
func (*Request) SetBody(b []byte) error { return bodySet(abi.KindRequest, b) }

// SendResponse builds a local response and ends the chain: OnRequest then
// returns Stop (the SDK returns Stop for it even if it returns Continue).
// Headers of the local response can be set on the returned Response in the
// same hook. status is a final one (200–599), and one without a body (204,
// 304) takes none: anything else fails with ErrBadArgument. On a HEAD
// request the body is not sent; its length is the Content-Length.
func (*Request) SendResponse(status int, body []byte) (*Response, error) {
	if status < abi.MinStatus || status > abi.MaxStatus || len(body) > 0 && abi.BodylessStatus(status) {
		return nil, &Error{Func: abi.FuncSendResponse, Code: abi.BadArgument}
	}
	if len(body) > math.MaxInt32 {
		return nil, &Error{Func: abi.FuncSendResponse, Code: abi.TooLarge}
	}
	if err := codeErr(abi.FuncSendResponse, hostSendResponse(int32(status), body)); err != nil {
		return nil, err
	}
	localSent = true
	return &response, nil
}

// Request returns the request this response answers, for reading.
func (*Response) Request() *Request { return &request }

// Status is the response status code (0 when not available: in OnRequest
// before SendResponse).
func (*Response) Status() int {
	s := hostResponseStatus()
	if s < 0 {
		return 0
	}
	return int(s)
}

// SetStatus sets the status code, a final one (200–599; else
// ErrBadArgument). Setting one without a body (204, 304) drops the body;
// leaving one for a status with a body leaves an empty body to SetBody.
func (*Response) SetStatus(status int) error {
	if status < abi.MinStatus || status > abi.MaxStatus {
		return &Error{Func: abi.FuncResponseSetStatus, Code: abi.BadArgument}
	}
	return codeErr(abi.FuncResponseSetStatus, hostResponseSetStatus(int32(status)))
}

// Header returns the first value of the header and whether it is present.
func (*Response) Header(name string) (string, bool) { return headerGet(abi.KindResponse, name) }

// HeaderValues returns every value of the header, nil when absent.
func (*Response) HeaderValues(name string) []string { return headerValues(abi.KindResponse, name) }

// HeaderNames returns the names of the response's headers, each once.
func (*Response) HeaderNames() []string { return headerNames(abi.KindResponse) }

// SetHeader replaces every value of the header with value.
func (*Response) SetHeader(name, value string) error { return headerSet(abi.KindResponse, name, value) }

// AddHeader adds a value to the header.
func (*Response) AddHeader(name, value string) error { return headerAdd(abi.KindResponse, name, value) }

// RemoveHeader removes every value of the header; absent is not an error.
func (*Response) RemoveHeader(name string) error { return headerRemove(abi.KindResponse, name) }

// Body returns a copy of the whole response body.
func (*Response) Body() ([]byte, error) { return body(abi.KindResponse) }

// BodyRange copies the body bytes from offset into buf; see Request.BodyRange.
func (*Response) BodyRange(offset int64, buf []byte) (n int, size int64, err error) {
	return bodyRange(abi.KindResponse, offset, buf)
}

// SetBody replaces the response body (and its Content-Length). It fails
// with ErrTooLarge over the route's body limit, and with ErrNotAllowed for
// a non-empty body when the status has none (204, 304). On a HEAD request
// the body is the one a GET would get: it sets Content-Length and is not
// sent.
func (*Response) SetBody(b []byte) error { return bodySet(abi.KindResponse, b) }

func headerGet(kind int32, name string) (string, bool) {
	s, err := readString(abi.FuncHeaderGet, func(buf []byte) int32 { return hostHeaderGet(kind, name, buf) })
	return s, err == nil
}

func headerValues(kind int32, name string) []string {
	b, err := readScratch(abi.FuncHeaderValues, func(buf []byte) int32 { return hostHeaderValues(kind, name, buf) })
	if err != nil {
		return nil
	}
	return splitList(b)
}

func headerNames(kind int32) []string {
	b, err := readScratch(abi.FuncHeaderNames, func(buf []byte) int32 { return hostHeaderNames(kind, buf) })
	if err != nil {
		return nil
	}
	return dedupFold(splitList(b))
}

// dedupFold removes repeated names (the host lists a name once per value),
// keeping the first spelling and the order.
func dedupFold(names []string) []string {
	out := names[:0]
next:
	for _, n := range names {
		for _, seen := range out {
			if strings.EqualFold(n, seen) {
				continue next
			}
		}
		out = append(out, n)
	}
	return out
}

func headerSet(kind int32, name, value string) error {
	return codeErr(abi.FuncHeaderSet, hostHeaderSet(kind, name, value))
}

func headerAdd(kind int32, name, value string) error {
	return codeErr(abi.FuncHeaderAdd, hostHeaderAdd(kind, name, value))
}

func headerRemove(kind int32, name string) error {
	return codeErr(abi.FuncHeaderRemove, hostHeaderRemove(kind, name))
}

// body reads a whole body into a slice of its own: one host call when it
// fits the scratch buffer (then one copy), else one more straight into an
// exact-size allocation.
func body(kind int32) ([]byte, error) {
	if scratch == nil {
		scratch = make([]byte, scratchInitial)
	}
	size := hostBodyGet(kind, 0, scratch)
	if size < 0 {
		return nil, codeErr(abi.FuncBodyGet, int32(size))
	}
	if size <= int64(len(scratch)) {
		return append([]byte(nil), scratch[:size]...), nil
	}
	for range maxAttempts {
		if size > maxRead {
			return nil, &Error{Func: abi.FuncBodyGet, Code: abi.TooLarge}
		}
		buf := make([]byte, size)
		got := hostBodyGet(kind, 0, buf)
		if got < 0 {
			return nil, codeErr(abi.FuncBodyGet, int32(got))
		}
		if got <= size {
			return buf[:got], nil
		}
		size = got
	}
	return nil, &Error{Func: abi.FuncBodyGet, Code: abi.Unavailable}
}

func bodyRange(kind int32, offset int64, buf []byte) (int, int64, error) {
	if offset < 0 {
		return 0, 0, &Error{Func: abi.FuncBodyGet, Code: abi.BadArgument}
	}
	if len(buf) > math.MaxInt32 {
		buf = buf[:math.MaxInt32]
	}
	size := hostBodyGet(kind, offset, buf)
	if size < 0 {
		return 0, 0, codeErr(abi.FuncBodyGet, int32(size))
	}
	n := min(max(size-offset, 0), int64(len(buf)))
	return int(n), size, nil
}

func bodySet(kind int32, b []byte) error {
	if len(b) > math.MaxInt32 {
		return &Error{Func: abi.FuncBodySet, Code: abi.TooLarge}
	}
	return codeErr(abi.FuncBodySet, hostBodySet(kind, b))
}
