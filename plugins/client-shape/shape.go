package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wasmgate/wasmgate/sdk/abi"
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

type config struct {
	Profiles     map[string]profileConfig `json:"profiles"`
	Rules        []ruleConfig             `json:"rules"`
	ClientHeader string                   `json:"client_header"`
	Default      string                   `json:"default"`
	FieldsParam  string                   `json:"fields_param"`
	MaxFields    int                      `json:"max_fields"`
	MaxBody      int64                    `json:"max_body"`
}

type profileConfig struct {
	Fields []string            `json:"fields"`
	Ops    []jsonpath.OpConfig `json:"ops"`
}

type ruleConfig struct {
	Profile string `json:"profile"`
	Header  string `json:"header"`
	Pattern string `json:"pattern"`
	Equals  string `json:"equals"`
}

// builtinRules apply when the config has no "rules".
var builtinRules = []ruleConfig{
	{Profile: "tv", Header: "User-Agent", Pattern: `(?i)smart-?tv|appletv|googletv|android ?tv|roku|tizen|web0?os|hbbtv|bravia|aft[a-z]`},
	{Profile: "mobile", Header: "Sec-CH-UA-Mobile", Equals: "?1"},
	{Profile: "mobile", Header: "User-Agent", Pattern: `(?i)mobile|iphone|ipod|android|blackberry|opera mini|iemobile`},
}

const (
	defaultMaxFields = 32
	defaultMaxBody   = 8 << 20
)

type profile struct {
	name   string
	ops    []jsonpath.Op
	fields *jsonpath.Selection // nil: keep everything
}

type rule struct {
	profile *profile
	header  string
	re      *regexp.Regexp // or
	equals  string
}

// shaper is the compiled config.
type shaper struct {
	profiles     map[string]*profile
	rules        []rule
	clientHeader string
	def          *profile
	fieldsParam  string
	maxFields    int
	maxBody      int64
	vary         string // the request headers consulted
}

func newShaper(b []byte) (*shaper, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	if len(c.Profiles) == 0 {
		return nil, errors.New(`missing "profiles": name → {fields: [paths], ops: [...]}, e.g. mobile, tv, web`)
	}
	s := &shaper{profiles: map[string]*profile{}, maxFields: c.MaxFields, maxBody: c.MaxBody}
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p, err := compileProfile(n, c.Profiles[n])
		if err != nil {
			return nil, fmt.Errorf("profiles.%s: %w", n, err)
		}
		s.profiles[n] = p
	}
	rules := c.Rules
	if rules == nil {
		for _, r := range builtinRules {
			if s.profiles[r.Profile] != nil {
				rules = append(rules, r)
			}
		}
	}
	var vary []string
	addVary := func(h string) {
		if !slices.ContainsFunc(vary, func(v string) bool { return strings.EqualFold(v, h) }) {
			vary = append(vary, h)
		}
	}
	for i, rc := range rules {
		r, err := s.compileRule(rc)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		s.rules = append(s.rules, r)
		addVary(r.header)
	}
	switch s.clientHeader = c.ClientHeader; s.clientHeader {
	case "":
		s.clientHeader = "X-Client"
	case "-":
		s.clientHeader = ""
	}
	if s.clientHeader != "" {
		if !abi.IsToken(s.clientHeader) {
			return nil, fmt.Errorf(`"client_header": %q is not a valid header name`, s.clientHeader)
		}
		addVary(s.clientHeader)
	}
	s.vary = strings.Join(vary, ", ")
	switch {
	case c.Default != "":
		if s.def = s.profiles[c.Default]; s.def == nil {
			return nil, fmt.Errorf(`"default": no profile %q (have %s)`, c.Default, strings.Join(names, ", "))
		}
	default:
		s.def = s.profiles["web"] // may be nil: no reshaping
	}
	switch s.fieldsParam = c.FieldsParam; s.fieldsParam {
	case "":
		s.fieldsParam = "fields"
	case "-":
		s.fieldsParam = ""
	}
	if s.maxFields == 0 {
		s.maxFields = defaultMaxFields
	}
	if s.maxFields < 0 || s.maxBody < 0 {
		return nil, errors.New(`"max_fields" and "max_body" must be positive`)
	}
	if s.maxBody == 0 {
		s.maxBody = defaultMaxBody
	}
	return s, nil
}

func compileProfile(name string, c profileConfig) (*profile, error) {
	p := &profile{name: name}
	if strings.ContainsAny(name, "\r\n\x00") || name == "" {
		return nil, errors.New("bad profile name")
	}
	var err error
	if p.ops, err = jsonpath.Compile("ops", c.Ops); err != nil {
		return nil, err
	}
	if len(c.Fields) > 0 {
		paths := make([]jsonpath.Path, 0, len(c.Fields))
		for i, f := range c.Fields {
			pp, err := jsonpath.ParsePath(f)
			if err != nil {
				return nil, fmt.Errorf("fields[%d]: %w", i, err)
			}
			paths = append(paths, pp)
		}
		p.fields = jsonpath.NewSelection(paths)
	}
	return p, nil
}

func (s *shaper) compileRule(c ruleConfig) (rule, error) {
	r := rule{profile: s.profiles[c.Profile], header: c.Header, equals: c.Equals}
	if r.profile == nil {
		return r, fmt.Errorf(`no profile %q`, c.Profile)
	}
	if !abi.IsToken(c.Header) {
		return r, fmt.Errorf(`"header": %q is not a valid header name`, c.Header)
	}
	switch {
	case c.Pattern != "" && c.Equals != "":
		return r, errors.New(`want "pattern" or "equals", not both`)
	case c.Pattern != "":
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return r, fmt.Errorf(`"pattern": %w`, err)
		}
		r.re = re
	case c.Equals == "":
		return r, errors.New(`want "pattern" or "equals"`)
	}
	return r, nil
}

// headers is what profile choice reads of the request.
type headers interface {
	Header(name string) (string, bool)
}

// choose picks the request's profile; nil means no reshaping.
func (s *shaper) choose(r headers) *profile {
	if s.clientHeader != "" {
		if v, ok := r.Header(s.clientHeader); ok {
			if p := s.profiles[strings.TrimSpace(v)]; p != nil {
				return p
			}
		}
	}
	for _, rl := range s.rules {
		v, ok := r.Header(rl.header)
		if !ok {
			continue
		}
		if rl.re != nil && rl.re.MatchString(v) || rl.re == nil && strings.TrimSpace(v) == rl.equals {
			return rl.profile
		}
	}
	return s.def
}

// selection parses a fields= value: comma-separated dot paths.
func (s *shaper) selection(param string) (*jsonpath.Selection, error) {
	parts := strings.Split(param, ",")
	if len(parts) > s.maxFields {
		return nil, fmt.Errorf("%d fields, at most %d", len(parts), s.maxFields)
	}
	paths := make([]jsonpath.Path, 0, len(parts))
	for _, f := range parts {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := jsonpath.ParsePath(f)
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, errors.New("no fields")
	}
	return jsonpath.NewSelection(paths), nil
}

// errInvalid marks a body that is not JSON (left as it is).
var errInvalid = errors.New("body is not valid JSON")

// shape applies p's ops, then the selection sel (or p's fields when sel is
// nil). p may be nil (only sel applies).
func shape(body []byte, p *profile, sel *jsonpath.Selection) ([]byte, error) {
	doc, err := jsonpath.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if p != nil {
		jsonpath.Apply(doc, p.ops)
		if sel == nil {
			sel = p.fields
		}
	}
	if sel != nil {
		doc = sel.Apply(doc)
	}
	return doc.AppendJSON(make([]byte, 0, len(body))), nil
}

// isJSON reports whether headers say the body is plain (uncompressed) JSON.
func isJSON(contentType, contentEncoding string) bool {
	ct := strings.ToLower(contentType)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ce := strings.TrimSpace(strings.ToLower(contentEncoding))
	return strings.Contains(ct, "json") && (ce == "" || ce == "identity")
}
