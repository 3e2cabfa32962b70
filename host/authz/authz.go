// Package authz decides a route's authorization policy on what the route's
// auth plugins established about a request: the consumer (set_consumer)
// and the verified claims (set_claims). Authentication stays in plugins,
// where every token format and key source can live; the rule that says who
// may call a route stays in the config, where an operator can read it.
//
// A policy answers one of three ways: allowed; unauthenticated (nothing was
// established: 401 with a Bearer challenge and no error code, RFC 6750
// section 3.1); forbidden (403). A missing scope is the one refusal RFC
// 6750 names, error="insufficient_scope" with the scopes the route needs;
// a consumer or claim refused gets a 403 with no challenge, since no
// scheme defines an error code for it and new credentials would not help.
package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Spec is a route's policy as the config writes it. Every part given must
// hold; an empty Spec allows any request that established something.
type Spec struct {
	// RequireScopes must all be among the claims' scopes: the
	// space-separated "scope" claim (RFC 9068) and the "scp" claim (a list
	// or a space-separated string).
	RequireScopes []string
	// Claims maps a claim, by dotted path ("realm_access.roles"), to the
	// values that admit a request: one of them must be the claim's value
	// or, for a list claim such as groups, one of its elements. Strings
	// compare as they are; numbers and booleans as their JSON text.
	Claims map[string][]string
	// Consumers, when given, admits only these consumers.
	Consumers []string
	// Realm is the challenge's realm; "" is "wasmgate".
	Realm string
}

// Policy is a compiled Spec. It is immutable and safe for concurrent use.
type Policy struct {
	scopes    []string
	claims    []claimRule
	consumers map[string]struct{}
	// Challenges, built once.
	unauthenticated string
	insufficient    string
}

type claimRule struct {
	name   string   // the dotted path as written, for messages
	path   []string // its segments
	values map[string]struct{}
}

// Verdict is what a policy decided.
type Verdict uint8

// The verdicts.
const (
	Allow           Verdict = iota
	Unauthenticated         // nothing established: 401
	Forbidden               // established, not admitted: 403
)

// Decision is a policy's answer for one request.
type Decision struct {
	Verdict Verdict
	// Challenge is the WWW-Authenticate value to send, or "".
	Challenge string
	// Reason says, for the error body and the log, which rule refused the
	// request. It names rules, never a claim's value.
	Reason string
}

// Status is the HTTP status of the decision: 200 when allowed.
func (d Decision) Status() int {
	switch d.Verdict {
	case Unauthenticated:
		return 401
	case Forbidden:
		return 403
	}
	return 200
}

// Compile validates spec and compiles it.
func Compile(spec Spec) (*Policy, error) {
	realm := spec.Realm
	if realm == "" {
		realm = "wasmgate"
	}
	if err := checkQuotable(realm); err != nil {
		return nil, fmt.Errorf("realm: %w", err)
	}
	p := &Policy{unauthenticated: `Bearer realm="` + realm + `"`}
	for _, s := range spec.RequireScopes {
		if err := checkScope(s); err != nil {
			return nil, fmt.Errorf("require_scopes: %w", err)
		}
		if !slices.Contains(p.scopes, s) {
			p.scopes = append(p.scopes, s)
		}
	}
	if len(p.scopes) > 0 {
		p.insufficient = p.unauthenticated + `, error="insufficient_scope", scope="` + strings.Join(p.scopes, " ") + `"`
	}
	names := make([]string, 0, len(spec.Claims))
	for name := range spec.Claims {
		names = append(names, name)
	}
	slices.Sort(names) // one order of checks, whatever the map's
	for _, name := range names {
		values := spec.Claims[name]
		path := strings.Split(name, ".")
		if slices.Contains(path, "") {
			return nil, fmt.Errorf("claims: claim path %q has an empty segment", name)
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("claims: %q lists no value (it could admit no one)", name)
		}
		r := claimRule{name: name, path: path, values: make(map[string]struct{}, len(values))}
		for _, v := range values {
			r.values[v] = struct{}{}
		}
		p.claims = append(p.claims, r)
	}
	if spec.Consumers != nil {
		if len(spec.Consumers) == 0 {
			return nil, errors.New("consumers: the list is empty (it would admit no one)")
		}
		p.consumers = make(map[string]struct{}, len(spec.Consumers))
		for _, c := range spec.Consumers {
			if c == "" {
				return nil, errors.New("consumers: an empty consumer id")
			}
			p.consumers[c] = struct{}{}
		}
	}
	return p, nil
}

// checkScope checks a scope token (RFC 6749 section 3.3: printable ASCII
// but space, '"' and '\'), which also keeps the challenge well-formed.
func checkScope(s string) error {
	if s == "" {
		return errors.New("an empty scope")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return fmt.Errorf("scope %q holds %q (a scope is printable ASCII without space, '\"' or '\\')", s, c)
		}
	}
	return nil
}

// checkQuotable checks text for a quoted-string with no escapes.
func checkQuotable(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return fmt.Errorf("%q holds %q (printable ASCII without '\"' or '\\')", s, c)
		}
	}
	return nil
}

// Decide decides the policy for a request whose plugins established
// consumer (empty: none) and claims (a JSON object, empty: none).
func (p *Policy) Decide(consumer, claims []byte) Decision {
	if len(consumer) == 0 && len(claims) == 0 {
		return Decision{Verdict: Unauthenticated, Challenge: p.unauthenticated, Reason: "no credentials were established"}
	}
	if p.consumers != nil {
		if _, ok := p.consumers[string(consumer)]; !ok {
			return Decision{Verdict: Forbidden, Reason: "the consumer is not admitted to this route"}
		}
	}
	if len(p.claims) == 0 && len(p.scopes) == 0 {
		return Decision{}
	}
	var doc map[string]any
	if len(claims) > 0 {
		d := json.NewDecoder(bytes.NewReader(claims))
		d.UseNumber()
		if d.Decode(&doc) != nil {
			doc = nil // set_claims admits only objects; treat anything else as none
		}
	}
	for i := range p.claims {
		r := &p.claims[i]
		if !r.admits(lookup(doc, r.path)) {
			return Decision{Verdict: Forbidden, Reason: fmt.Sprintf("claim %q does not have an admitted value", r.name)}
		}
	}
	if len(p.scopes) > 0 {
		granted := scopesOf(doc)
		for _, s := range p.scopes {
			if !slices.Contains(granted, s) {
				return Decision{Verdict: Forbidden, Challenge: p.insufficient, Reason: fmt.Sprintf("scope %q is required", s)}
			}
		}
	}
	return Decision{}
}

// lookup follows a dotted path through nested objects.
func lookup(doc map[string]any, path []string) any {
	var v any = doc
	for _, part := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[part]; !ok {
			return nil
		}
	}
	return v
}

// admits reports whether the claim value v, or one element of a list v,
// is among the rule's values.
func (r *claimRule) admits(v any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if r.admitsScalar(e) {
				return true
			}
		}
		return false
	}
	return r.admitsScalar(v)
}

func (r *claimRule) admitsScalar(v any) bool {
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case json.Number:
		text = x.String()
	case bool:
		text = "false"
		if x {
			text = "true"
		}
	default: // null, objects, lists in lists: not comparable
		return false
	}
	_, ok := r.values[text]
	return ok
}

// scopesOf returns the scopes the claims grant: "scope" (a space-separated
// string) and "scp" (a list of strings or a space-separated string).
func scopesOf(doc map[string]any) []string {
	var out []string
	for _, name := range [...]string{"scope", "scp"} {
		switch x := doc[name].(type) {
		case string:
			out = append(out, strings.Fields(x)...)
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
