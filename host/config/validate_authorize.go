package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wasmgate/wasmgate/host/authz"
)

// authorize checks a route's authorization policy. A policy needs a plugin
// chain: without one nothing establishes a consumer or claims, and every
// request would be refused.
func (v *validator) authorize(r *Route, pfx string) {
	a := r.Authorize
	if a == nil {
		return
	}
	pfx += "authorize: "
	if len(r.Plugins) == 0 {
		v.errorf(r.At.Of("authorize", r.Pos), "%sthe route has no plugins: an auth plugin must establish the consumer or claims it decides on", pfx)
	}
	spec, err := a.Spec()
	if err != nil {
		v.errorf(a.At.Of("claims", a.Pos), "%s%v", pfx, err)
		return
	}
	if _, err := authz.Compile(spec); err != nil {
		key, _, _ := strings.Cut(err.Error(), ":") // authz names the setting first
		v.errorf(a.At.Of(key, a.Pos), "%s%v", pfx, err)
	}
}

// Spec is the policy host/authz compiles for these settings.
func (a *Authorize) Spec() (authz.Spec, error) {
	spec := authz.Spec{RequireScopes: a.RequireScopes, Consumers: a.Consumers, Realm: a.Realm}
	if len(a.Claims) == 0 {
		return spec, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(a.Claims, &doc); err != nil || doc == nil {
		return spec, fmt.Errorf("claims: want a mapping of claim to value or list of values")
	}
	spec.Claims = make(map[string][]string, len(doc))
	for name, raw := range doc {
		var list []json.RawMessage
		if raw[0] != '[' {
			list = []json.RawMessage{raw}
		} else if err := json.Unmarshal(raw, &list); err != nil {
			return spec, fmt.Errorf("claims: %q: %v", name, err)
		}
		values := make([]string, 0, len(list))
		for _, e := range list {
			text, ok := claimText(e)
			if !ok {
				return spec, fmt.Errorf("claims: %q: want a string, number or boolean, or a list of them, got %s", name, e)
			}
			values = append(values, text)
		}
		spec.Claims[name] = values
	}
	return spec, nil
}

// claimText is the text a claim value compares as: a string's value, the
// JSON text of a number or boolean.
func claimText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return "", false
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case string(raw) == "true" || string(raw) == "false", raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return string(raw), true
	}
	return "", false
}
