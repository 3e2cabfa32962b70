package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

type config struct {
	Parts          []partConfig `json:"parts"`
	Mode           string       `json:"mode"`
	User           *userConfig  `json:"user"`
	ForwardHeaders []string     `json:"forward_headers"`
	ErrorsKey      string       `json:"errors_key"`
}

type partConfig struct {
	Name    string            `json:"name"`
	URL     string            `json:"url"`
	Timeout wasmgate.Duration `json:"timeout"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

type userConfig struct {
	Header string `json:"header"`
	Query  string `json:"query"`
}

const (
	maxParts  = abi.MaxBatch // one part, one request of the batch
	maxUserID = 128
)

type part struct {
	name    string
	url     string // with {user} placeholders
	timeout time.Duration
	method  string
	headers []wasmgate.HeaderField
}

// aggregator is the compiled config.
type aggregator struct {
	parts      []part
	partial    bool
	needsUser  bool
	userHeader string
	userQuery  string
	forward    []string
	errorsKey  string
}

func newAggregator(b []byte) (*aggregator, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	if len(c.Parts) == 0 {
		return nil, errors.New(`missing "parts": list {name, url} for each service to call`)
	}
	if len(c.Parts) > maxParts {
		return nil, fmt.Errorf(`"parts": %d parts, at most %d`, len(c.Parts), maxParts)
	}
	a := &aggregator{userHeader: "X-User-Id", userQuery: "user", errorsKey: c.ErrorsKey}
	switch c.Mode {
	case "", "strict":
	case "partial":
		a.partial = true
	default:
		return nil, fmt.Errorf(`"mode": %q: want strict or partial`, c.Mode)
	}
	if c.User != nil {
		a.userHeader, a.userQuery = c.User.Header, c.User.Query
		if a.userHeader == "" && a.userQuery == "" {
			return nil, errors.New(`"user": give "header", "query" or both`)
		}
		if a.userHeader != "" && !abi.IsToken(a.userHeader) {
			return nil, fmt.Errorf(`"user.header": %q is not a valid header name`, a.userHeader)
		}
	}
	if a.errorsKey == "" {
		a.errorsKey = "_errors"
	}
	for _, h := range c.ForwardHeaders {
		if !abi.IsToken(h) {
			return nil, fmt.Errorf(`"forward_headers": %q is not a valid header name`, h)
		}
	}
	a.forward = c.ForwardHeaders
	for i, pc := range c.Parts {
		p, err := compilePart(pc)
		if err != nil {
			return nil, fmt.Errorf("parts[%d]: %w", i, err)
		}
		if p.name == a.errorsKey {
			return nil, fmt.Errorf("parts[%d]: name %q is the errors_key", i, p.name)
		}
		if slices.ContainsFunc(a.parts, func(o part) bool { return o.name == p.name }) {
			return nil, fmt.Errorf("parts[%d]: duplicate name %q", i, p.name)
		}
		a.needsUser = a.needsUser || strings.Contains(p.url, "{user}")
		a.parts = append(a.parts, p)
	}
	return a, nil
}

func compilePart(c partConfig) (part, error) {
	p := part{name: c.Name, url: c.URL, timeout: c.Timeout.D(), method: c.Method}
	if p.name == "" {
		return p, errors.New(`missing "name"`)
	}
	for _, r := range p.name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return p, fmt.Errorf(`name %q: use letters, digits, "_" and "-"`, p.name)
		}
	}
	if !strings.HasPrefix(p.url, "upstream://") && !strings.HasPrefix(p.url, "http://") {
		return p, fmt.Errorf(`url %q: want upstream://NAME/path or http://host:port/path`, p.url)
	}
	if rest := strings.ReplaceAll(p.url, "{user}", ""); strings.ContainsAny(rest, "{} \r\n") {
		return p, fmt.Errorf(`url %q: only {user} may be substituted, and no spaces`, p.url)
	}
	if p.method == "" {
		p.method = "GET"
	}
	if !abi.IsToken(p.method) {
		return p, fmt.Errorf("method %q is not a valid method", p.method)
	}
	names := make([]string, 0, len(c.Headers))
	for n := range c.Headers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v := c.Headers[n]
		if !abi.IsToken(n) || strings.ContainsAny(v, "\r\n\x00") {
			return p, fmt.Errorf("header %q: invalid name or value", n)
		}
		p.headers = append(p.headers, wasmgate.HeaderField{Name: n, Value: v})
	}
	return p, nil
}

// request is what the plugin reads of the client's request.
type request interface {
	Header(name string) (string, bool)
	QueryParam(name string) (string, bool)
}

// errNoUser and errBadUser answer 400.
var (
	errNoUser  = errors.New("missing user id")
	errBadUser = errors.New("invalid user id")
)

// userID finds the user id: header first, then query.
func (a *aggregator) userID(r request) (string, error) {
	var id string
	if a.userHeader != "" {
		id, _ = r.Header(a.userHeader)
	}
	if id == "" && a.userQuery != "" {
		id, _ = r.QueryParam(a.userQuery)
	}
	if id == "" {
		if a.needsUser {
			return "", errNoUser
		}
		return "", nil
	}
	if len(id) > maxUserID {
		return "", errBadUser
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._~-", c) >= 0) {
			return "", errBadUser // nothing that could change the meaning of a URL
		}
	}
	return id, nil
}

// missingUserBody is the 400 body for a request without (or with a bad) user id.
func (a *aggregator) missingUserBody(err error) []byte {
	var where []string
	if a.userHeader != "" {
		where = append(where, a.userHeader+" header")
	}
	if a.userQuery != "" {
		where = append(where, a.userQuery+" query parameter")
	}
	b, _ := json.Marshal(map[string]string{"error": err.Error() + " (" + strings.Join(where, " or ") + ")"})
	return append(b, '\n')
}

// requests builds the batch for user, with the forwarded client headers.
func (a *aggregator) requests(user string, r request) []wasmgate.OutboundRequest {
	var fwd []wasmgate.HeaderField
	for _, h := range a.forward {
		if v, ok := r.Header(h); ok {
			fwd = append(fwd, wasmgate.HeaderField{Name: h, Value: v})
		}
	}
	reqs := make([]wasmgate.OutboundRequest, len(a.parts))
	for i, p := range a.parts {
		reqs[i] = wasmgate.OutboundRequest{
			Method:  p.method,
			URL:     strings.ReplaceAll(p.url, "{user}", user),
			Header:  append(slices.Clip(fwd), p.headers...),
			Timeout: p.timeout,
		}
	}
	return reqs
}

// answer is the merged response.
type answer struct {
	status  int
	body    []byte
	timing  string // Server-Timing
	failed  int
	elapsed time.Duration // the slowest part
}

// merge builds the answer from the parts' results (in part order).
func (a *aggregator) merge(results []wasmgate.OutboundResult) answer {
	var ans answer
	reasons := make([]string, len(a.parts))
	var timing strings.Builder
	for i := range a.parts {
		if i >= len(results) {
			reasons[i] = "no result" // the host answers every request; never reached
			ans.failed++
			continue
		}
		r := &results[i]
		if reasons[i] = failure(r); reasons[i] != "" {
			ans.failed++
		}
		ans.elapsed = max(ans.elapsed, r.Duration)
		if timing.Len() > 0 {
			timing.WriteString(", ")
		}
		timing.WriteString(a.parts[i].name)
		timing.WriteString(";dur=")
		timing.WriteString(strconv.FormatFloat(float64(r.Duration)/float64(time.Millisecond), 'f', 1, 64))
	}
	ans.timing = timing.String()

	if ans.failed > 0 && (!a.partial || ans.failed == len(a.parts)) {
		ans.status = 502
		failedParts := map[string]string{}
		first := -1
		for i, why := range reasons {
			if why != "" {
				failedParts[a.parts[i].name] = why
				if first < 0 {
					first = i
				}
			}
		}
		b, _ := json.Marshal(map[string]any{
			"error":  fmt.Sprintf("part %q failed: %s", a.parts[first].name, reasons[first]),
			"failed": failedParts,
		})
		ans.body = append(b, '\n')
		return ans
	}

	ans.status = 200
	b := make([]byte, 0, 64+bodiesLen(results))
	b = append(b, '{')
	for i, p := range a.parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, p.name) // names are plain ASCII: Go and JSON quoting agree
		b = append(b, ':')
		if reasons[i] != "" {
			b = append(b, "null"...)
		} else {
			b = append(b, trimSpace(results[i].Body)...)
		}
	}
	if ans.failed > 0 {
		b = append(b, ',')
		b = strconv.AppendQuote(b, a.errorsKey)
		b = append(b, ":{"...)
		n := 0
		for i, why := range reasons {
			if why == "" {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = strconv.AppendQuote(b, a.parts[i].name)
			e, _ := json.Marshal(map[string]string{"error": why})
			b = append(b, ':')
			b = append(b, e...)
		}
		b = append(b, '}')
	}
	ans.body = append(b, "}\n"...)
	return ans
}

// failure says why a part failed, "" when it did not.
func failure(r *wasmgate.OutboundResult) string {
	switch err := r.Err(); {
	case errors.Is(err, wasmgate.ErrTimeout):
		return "timeout"
	case errors.Is(err, wasmgate.ErrNetwork):
		return "connect or network error"
	case errors.Is(err, wasmgate.ErrNotAllowed):
		return "destination not allowed by the route's outbound config"
	case err != nil:
		return "request failed"
	case r.Status < 200 || r.Status > 299:
		return "status " + strconv.Itoa(r.Status)
	case !json.Valid(r.Body):
		return "answer is not JSON"
	}
	return ""
}

func bodiesLen(rs []wasmgate.OutboundResult) int {
	n := 0
	for _, r := range rs {
		n += len(r.Body)
	}
	return n
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
