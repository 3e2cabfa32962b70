package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

// request is what the plugin needs of a request; *wasmgate.Request has it.
type request interface {
	Header(name string) (string, bool)
	QueryParam(name string) (string, bool)
	SetHeader(name, value string) error
	RemoveHeader(name string) error
}

// rejection is the 401 (or 503) to answer instead of passing the request on.
type rejection struct {
	status          int
	wwwAuthenticate string // 401 only
	retryAfter      string // 503 only: seconds
	body            []byte
}

// identity is what a verified token establishes.
type identity struct {
	consumer string // the consumer claim; "" when the token has none
	claims   []byte // the token's claims, as a JSON object
}

// authenticate checks the request's token at time now. On success it
// forwards the configured claims as request headers (after removing any the
// client sent) and returns the identity the token establishes; otherwise
// the 401 to send, or a 503 when the keys that would judge the token
// cannot be had (the JWKS is unreachable).
func (v *verifier) authenticate(r request, now time.Time) (id identity, rej *rejection, err error) {
	// Remove client-supplied copies first, whatever the outcome: a
	// request must never reach the upstream with an identity header that
	// did not come from a verified token.
	for _, f := range v.forwards {
		if err := r.RemoveHeader(f.header); err != nil {
			return identity{}, nil, err
		}
	}
	token, found := v.token(r)
	if !found {
		return identity{}, v.reject("", "missing bearer token"), nil
	}
	c, aerr := v.verify(token, now)
	if aerr != nil {
		if aerr.err != nil {
			return identity{}, nil, aerr.err // the plugin failed, not the token: the route's policy decides
		}
		if aerr.retryAfter > 0 {
			return identity{}, unavailable(aerr), nil
		}
		return identity{}, v.reject(aerr.desc, aerr.desc), nil
	}
	for _, f := range v.forwards {
		val, ok := claimValue(c, f.claim)
		if !ok {
			continue
		}
		if !validHeaderValue(val) {
			return identity{}, v.reject(errClaimHeader.desc, errClaimHeader.desc), nil
		}
		if err := r.SetHeader(f.header, val); err != nil {
			return identity{}, nil, err
		}
	}
	if v.strip && v.header != "" {
		if err := r.RemoveHeader(v.header); err != nil {
			return identity{}, nil, err
		}
	}
	id.consumer, _ = claimValue(c, v.consumer)
	id.claims = c.AppendJSON(nil)
	return id, nil, nil
}

// token finds the token: the configured header (after "Bearer " for
// Authorization), else the query parameter.
func (v *verifier) token(r request) (string, bool) {
	if v.header != "" {
		if h, ok := r.Header(v.header); ok {
			h = strings.TrimSpace(h)
			if !v.bearer {
				return h, h != ""
			}
			scheme, tok, ok := strings.Cut(h, " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				tok = strings.TrimSpace(tok)
				return tok, tok != ""
			}
		}
	}
	if v.query != "" {
		if q, ok := r.QueryParam(v.query); ok && q != "" {
			return q, true
		}
	}
	return "", false
}

// reject builds the 401. With errCode "" (no token) the challenge names only
// the realm, as RFC 6750 section 3.1 asks for a request without credentials.
func (v *verifier) reject(errCode, desc string) *rejection {
	var ch strings.Builder
	ch.WriteString(`Bearer realm="`)
	ch.WriteString(v.realm)
	ch.WriteByte('"')
	body := map[string]string{"error": "unauthorized", "error_description": desc}
	if errCode != "" {
		ch.WriteString(`, error="invalid_token", error_description="`)
		ch.WriteString(desc)
		ch.WriteByte('"')
		body["error"] = "invalid_token"
	}
	b, _ := json.Marshal(body)
	return &rejection{status: 401, wwwAuthenticate: ch.String(), body: append(b, '\n')}
}

// unavailable builds the 503 for a token that cannot be judged now: its
// key would come from a JWKS that cannot be fetched. Retry-After is when
// the next fetch may be tried (whole seconds, at least 1).
func unavailable(e *authError) *rejection {
	secs := int64((e.retryAfter + time.Second - 1) / time.Second)
	b, _ := json.Marshal(map[string]string{"error": "temporarily_unavailable", "error_description": e.desc})
	return &rejection{status: 503, retryAfter: strconv.FormatInt(max(secs, 1), 10), body: append(b, '\n')}
}

// claimValue finds a claim by path and formats it for a header: strings as
// they are, numbers and booleans as JSON, lists comma-joined, objects as
// compact JSON. A null or absent claim is not forwarded.
func claimValue(c claims, path jsonpath.Path) (string, bool) {
	v := path.First(c)
	if v == nil || v.Kind == jsonpath.Null {
		return "", false
	}
	return headerText(v), true
}

func headerText(v *jsonpath.Value) string {
	switch v.Kind {
	case jsonpath.String:
		s, _ := v.Str()
		return s
	case jsonpath.Array:
		parts := make([]string, len(v.Items))
		for i, it := range v.Items {
			if it.Kind == jsonpath.Array {
				parts[i] = string(it.AppendJSON(nil))
			} else {
				parts[i] = headerText(it)
			}
		}
		return strings.Join(parts, ",")
	case jsonpath.Object:
		return string(v.AppendJSON(nil))
	}
	return v.Text()
}

// validHeaderValue: no CR, LF or NUL (the host would refuse them).
func validHeaderValue(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }
