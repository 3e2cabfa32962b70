package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wasmgate/wasmgate/sdk/abi"
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

type config struct {
	Request  *messageConfig `json:"request"`
	Response *messageConfig `json:"response"`
}

type messageConfig struct {
	Path    *pathConfig    `json:"path"`
	Headers *headersConfig `json:"headers"`
}

type pathConfig struct {
	Prefix  *string `json:"prefix"`
	Regex   *string `json:"regex"`
	Replace *string `json:"replace"`
}

type headersConfig struct {
	Remove []string                `json:"remove"`
	Set    map[string]string       `json:"set"`
	Add    map[string]stringOrList `json:"add"`
}

// stringOrList is a JSON string or list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stringOrList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = list
	return nil
}

// header is one header edit.
type header struct{ name, value string }

// headerOps are compiled header edits, applied remove, set, add.
type headerOps struct {
	remove []string
	set    []header
	add    []header
}

func (h *headerOps) empty() bool { return h == nil || len(h.remove)+len(h.set)+len(h.add) == 0 }

// pathRewrite is a compiled path rewrite.
type pathRewrite struct {
	prefix  string
	re      *regexp.Regexp
	replace string
}

// rewriter is the compiled config.
type rewriter struct {
	path     *pathRewrite
	request  *headerOps
	response *headerOps
}

func newRewriter(b []byte) (*rewriter, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	rw := &rewriter{}
	var err error
	if c.Request != nil {
		if c.Request.Path != nil {
			if rw.path, err = compilePath(c.Request.Path); err != nil {
				return nil, fmt.Errorf("request.path: %w", err)
			}
		}
		if rw.request, err = compileHeaders(c.Request.Headers); err != nil {
			return nil, fmt.Errorf("request.headers: %w", err)
		}
	}
	if c.Response != nil {
		if c.Response.Path != nil {
			return nil, errors.New("response.path: a response has no path")
		}
		if rw.response, err = compileHeaders(c.Response.Headers); err != nil {
			return nil, fmt.Errorf("response.headers: %w", err)
		}
	}
	if rw.path == nil && rw.request.empty() && rw.response.empty() {
		return nil, errors.New(`nothing to rewrite: configure request.path, request.headers or response.headers`)
	}
	return rw, nil
}

func compilePath(c *pathConfig) (*pathRewrite, error) {
	if c.Replace == nil {
		return nil, errors.New(`missing "replace"`)
	}
	switch {
	case c.Prefix != nil && c.Regex != nil:
		return nil, errors.New(`want "prefix" or "regex", not both`)
	case c.Prefix != nil:
		p := *c.Prefix
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf(`"prefix" %q must start with "/"`, p)
		}
		if r := *c.Replace; r != "" && !strings.HasPrefix(r, "/") {
			return nil, fmt.Errorf(`"replace" %q must be empty or start with "/"`, r)
		}
		return &pathRewrite{prefix: strings.TrimSuffix(p, "/"), replace: strings.TrimSuffix(*c.Replace, "/")}, nil
	case c.Regex != nil:
		re, err := regexp.Compile(*c.Regex)
		if err != nil {
			return nil, fmt.Errorf(`"regex": %w`, err)
		}
		return &pathRewrite{re: re, replace: *c.Replace}, nil
	}
	return nil, errors.New(`want "prefix" or "regex"`)
}

func compileHeaders(c *headersConfig) (*headerOps, error) {
	if c == nil {
		return nil, nil
	}
	ops := &headerOps{}
	for _, n := range c.Remove {
		if !abi.IsToken(n) {
			return nil, fmt.Errorf("remove: %q is not a valid header name", n)
		}
		ops.remove = append(ops.remove, n)
	}
	for _, n := range sortedKeys(c.Set) {
		if err := check(n, c.Set[n]); err != nil {
			return nil, fmt.Errorf("set: %w", err)
		}
		ops.set = append(ops.set, header{n, c.Set[n]})
	}
	for _, n := range sortedKeys(c.Add) {
		for _, v := range c.Add[n] {
			if err := check(n, v); err != nil {
				return nil, fmt.Errorf("add: %w", err)
			}
			ops.add = append(ops.add, header{n, v})
		}
	}
	return ops, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func check(name, value string) error {
	if !abi.IsToken(name) {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("%s: the value may not contain CR, LF or NUL", name)
	}
	return nil
}

// rewritePath returns the new path and whether it changed.
func (p *pathRewrite) rewritePath(path string) (string, bool) {
	var out string
	if p.re != nil {
		if !p.re.MatchString(path) {
			return path, false
		}
		out = p.re.ReplaceAllString(path, p.replace)
	} else {
		rest, ok := strings.CutPrefix(path, p.prefix)
		if !ok || rest != "" && rest[0] != '/' && p.prefix != "" {
			return path, false
		}
		out = p.replace + rest
	}
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	return out, out != path
}

// headerEditor is what header edits need; *wasmgate.Request and
// *wasmgate.Response have it.
type headerEditor interface {
	SetHeader(name, value string) error
	AddHeader(name, value string) error
	RemoveHeader(name string) error
}

// apply runs the edits on m.
func (h *headerOps) apply(m headerEditor) error {
	if h == nil {
		return nil
	}
	for _, n := range h.remove {
		if err := m.RemoveHeader(n); err != nil {
			return fmt.Errorf("removing %s: %w", n, err)
		}
	}
	for _, x := range h.set {
		if err := m.SetHeader(x.name, x.value); err != nil {
			return fmt.Errorf("setting %s: %w", x.name, err)
		}
	}
	for _, x := range h.add {
		if err := m.AddHeader(x.name, x.value); err != nil {
			return fmt.Errorf("adding %s: %w", x.name, err)
		}
	}
	return nil
}
