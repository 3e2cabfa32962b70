package router

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// MaxParams is the most params one route may capture. Params is a fixed-size
// array so that a match never allocates; Compile rejects routes with more.
const MaxParams = 16

// Params holds the values a route captured from the request path: {param}
// and {name...} segments of a template, or named groups of a path_regex.
// Values are sub-slices of the request's path and stay valid only as long as
// that path does (the request's lifetime).
type Params struct {
	n     int
	names [MaxParams]string
	vals  [MaxParams][]byte
}

// Get returns the value of the named param and whether the route has it.
func (p *Params) Get(name string) ([]byte, bool) {
	for i := 0; i < p.n; i++ {
		if p.names[i] == name {
			return p.vals[i], true
		}
	}
	return nil, false
}

// Len returns the number of params captured.
func (p *Params) Len() int { return p.n }

// At returns the i-th param in path order; i must be below Len.
func (p *Params) At(i int) (name string, value []byte) { return p.names[i], p.vals[i] }

// Result is what Match fills in. Callers keep one per request (or per worker)
// and reuse it, which is what keeps matching free of allocations.
type Result struct {
	// Route is the index of the matched route in the slice given to Compile.
	Route  int
	Params Params
	// Traits answers match.segments and match.flags conditions; set it
	// before Match. Nil: no segment or flag condition holds.
	Traits Traits
}

// Traits answers the conditions that depend on the gateway's traffic state
// rather than on the request alone: is the request's user in a segment, is
// a feature flag on for them. The router only names them.
type Traits interface {
	InSegment(name string) bool
	FlagOn(name string) bool
}

// Table is the compiled, immutable routing table. It is safe for concurrent use.
type Table struct {
	routes []*route
	exact  map[string]*group // by host
	wild   map[string]*group // by suffix: "*.example.com" is ".example.com"
	any    *group            // routes without hosts; nil when there are none
}

// Len returns the number of routes the Table was compiled from.
func (t *Table) Len() int { return len(t.routes) }

// route is the compiled form of one config.Route.
type route struct {
	index    int
	name     string
	pos      config.Pos
	methods  []string
	headers  []cond
	query    []cond
	cookies  []cond
	segments []string // match.segments, each must contain the user
	flags    []string // match.flags, each must be on for the user
	nconds   int      // rule 3: methods-present + headers + query + cookies + segments + flags
	priority int
	params   []string // param names in capture order
	tmpl     []part   // rewrite.path, nil when unset
	strip    string   // rewrite.strip_prefix without trailing slash
	key      string   // methods, conditions and priority in canonical form (conflicts)
}

// part is a literal piece of a rewrite template or, with param >= 0, a param.
type part struct {
	lit   string
	param int
}

// cond is one header, query or cookie condition.
type cond struct {
	name     string
	value    string
	hasValue bool
	re       *regexp.Regexp
	absent   bool
}

// group is the routing data of one host entry.
type group struct {
	root    node
	regexes []*regexEntry // distinct regexes, in config order
}

type regexEntry struct {
	src    string
	re     *regexp.Regexp
	groups []int // sub-expression index of each named group
	routes []*route
}

// node is a trie node; the path from the root spells its segments.
type node struct {
	static      map[string]*node
	param       *node
	catchAll    []*route // templates ending in {name...} here
	routes      []*route // exact or template paths ending here
	prefix      []*route // prefixes ending here
	prefixBelow bool     // this node or a static descendant has prefixes
}

// segment kinds of a parsed path template.
const (
	segLit = iota
	segParam
	segCatchAll
)

type seg struct {
	kind int
	lit  string
}

// Compile builds a Table from routes that passed structural validation. The
// error, when not nil, is a config.ErrorList naming file positions.
func Compile(file string, routes []config.Route) (*Table, error) {
	c := &compiler{file: file, t: &Table{exact: map[string]*group{}, wild: map[string]*group{}}}
	for i := range routes {
		c.add(i, &routes[i])
	}
	for _, g := range c.groups() {
		c.finish(&g.root)
		for _, e := range g.regexes {
			c.finishList(e.routes)
		}
	}
	if len(c.errs) > 0 {
		slices.SortStableFunc(c.errs, func(a, b config.Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), strings.Compare(a.Msg, b.Msg))
		})
		return nil, c.errs
	}
	return c.t, nil
}

type compiler struct {
	file     string
	t        *Table
	errs     config.ErrorList
	reported map[[2]int]bool
}

func (c *compiler) errorf(pos config.Pos, format string, args ...any) {
	c.errs = append(c.errs, config.Error{File: c.file, Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) groups() []*group {
	var gs []*group
	for _, g := range c.t.exact {
		gs = append(gs, g)
	}
	for _, g := range c.t.wild {
		gs = append(gs, g)
	}
	if c.t.any != nil {
		gs = append(gs, c.t.any)
	}
	return gs
}

func (c *compiler) add(i int, rc *config.Route) {
	m := &rc.Match
	r := &route{index: i, name: rc.Name, pos: rc.Pos, priority: rc.Priority}
	c.t.routes = append(c.t.routes, r)
	for _, meth := range m.Methods {
		if !slices.Contains(r.methods, meth) {
			r.methods = append(r.methods, meth)
		}
	}
	keys := slices.Sorted(slices.Values(r.methods))
	r.headers = c.conds(rc, "header", m.Headers, &keys)
	r.query = c.conds(rc, "query", m.Query, &keys)
	r.cookies = c.conds(rc, "cookie", m.Cookies, &keys)
	r.segments = uniqSorted(m.Segments)
	r.flags = uniqSorted(m.Flags)
	for _, s := range r.segments {
		keys = append(keys, "segment:"+s)
	}
	for _, f := range r.flags {
		keys = append(keys, "flag:"+f)
	}
	r.nconds = len(r.headers) + len(r.query) + len(r.cookies) + len(r.segments) + len(r.flags)
	if len(r.methods) > 0 {
		r.nconds++
	}
	r.key = fmt.Sprintf("%q %d", keys, r.priority)

	// Parse the path form once; it is inserted into every host group below.
	var segs []seg
	var re *regexp.Regexp
	var groups []int
	kind := "prefix"
	for _, f := range []struct{ key, path string }{{"path", m.Path}, {"path_prefix", m.PathPrefix}} {
		if want, ok := canonicalTemplate(f.path); !ok {
			c.errorf(m.At.Of(f.key, m.Pos), "route %q: %s %q is not a canonical path (requests are matched on their normalized, percent-encoded path): it reads as %q", rc.Name, f.key, f.path, want)
			return
		}
	}
	switch {
	case m.Path != "":
		kind = "path"
		var err error
		if segs, r.params, err = parseTemplate(m.Path); err != nil {
			c.errorf(m.At.Of("path", m.Pos), "route %q: path %q: %v", rc.Name, m.Path, err)
			return
		}
	case m.PathRegex != "":
		kind = "regex"
		var err error
		if re, err = regexp.Compile(`^(?:` + m.PathRegex + `)$`); err != nil {
			c.errorf(m.At.Of("path_regex", m.Pos), "route %q: path_regex: %v", rc.Name, err)
			return
		}
		for gi, name := range re.SubexpNames() {
			if name != "" {
				groups = append(groups, gi)
				r.params = append(r.params, name)
			}
		}
		if len(groups) > MaxParams {
			c.errorf(m.At.Of("path_regex", m.Pos), "route %q: path_regex has %d named groups, at most %d are allowed", rc.Name, len(groups), MaxParams)
			return
		}
	default:
		if p := strings.TrimRight(m.PathPrefix, "/"); p != "" {
			segs = splitLiteral(strings.TrimPrefix(p, "/")) // validation requires the "/"
		}
	}
	if rw := rc.Rewrite; rw != nil {
		for _, f := range []struct{ key, path string }{{"path", rw.Path}, {"strip_prefix", rw.StripPrefix}} {
			if want, ok := canonicalTemplate(f.path); !ok {
				c.errorf(rw.At.Of(f.key, rw.Pos), "route %q: rewrite.%s %q is not a canonical path: it reads as %q", rc.Name, f.key, f.path, want)
			}
		}
		r.strip = strings.TrimRight(rw.StripPrefix, "/")
		if rw.Path != "" {
			var err error
			if r.tmpl, err = parseRewrite(rw.Path, r.params); err != nil {
				c.errorf(rw.At.Of("path", rw.Pos), "route %q: rewrite.path %q: %v", rc.Name, rw.Path, err)
			}
		}
	}

	for _, g := range c.hostGroups(m.Hosts) {
		switch kind {
		case "regex":
			e := g.regexEntry(m.PathRegex, re, groups)
			e.routes = appendOnce(e.routes, r)
		case "path":
			n := g.root.insert(segs)
			if k := len(segs); k > 0 && segs[k-1].kind == segCatchAll {
				n.catchAll = appendOnce(n.catchAll, r)
			} else {
				n.routes = appendOnce(n.routes, r)
			}
		default:
			n := g.root.insert(segs)
			n.prefix = appendOnce(n.prefix, r)
		}
	}
}

// uniqSorted is names sorted without repeats (a condition written twice is
// one condition).
func uniqSorted(names []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(names)))
}

// conds compiles header, query or cookie conditions and adds their canonical
// form to keys.
func (c *compiler) conds(rc *config.Route, kind string, kcs []config.KeyCond, keys *[]string) []cond {
	out := make([]cond, 0, len(kcs))
	var ks []string
	for _, kc := range kcs {
		cd := cond{name: kc.Name, value: kc.Value, hasValue: kc.Value != "", absent: kc.Absent}
		if kc.Regex != "" {
			re, err := regexp.Compile(`^(?:` + kc.Regex + `)$`)
			if err != nil {
				c.errorf(kc.At.Of("regex", kc.Pos), "route %q: %s %q: regex: %v", rc.Name, kind, kc.Name, err)
				continue
			}
			cd.re = re
		}
		name := kc.Name
		if kind == "header" {
			name = strings.ToLower(name)
		}
		ks = append(ks, fmt.Sprintf("%s:%s=%q~%q!%t", kind, name, kc.Value, kc.Regex, kc.Absent))
		out = append(out, cd)
	}
	slices.Sort(ks)
	*keys = append(*keys, ks...)
	return out
}

// hostGroups returns (creating them) the groups of a route's host entries.
func (c *compiler) hostGroups(hosts []string) []*group {
	get := func(m map[string]*group, k string) *group {
		if m[k] == nil {
			m[k] = &group{}
		}
		return m[k]
	}
	if len(hosts) == 0 {
		if c.t.any == nil {
			c.t.any = &group{}
		}
		return []*group{c.t.any}
	}
	var gs []*group
	for _, h := range hosts {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			gs = append(gs, get(c.t.wild, suffix))
		} else {
			gs = append(gs, get(c.t.exact, h))
		}
	}
	return gs
}

func (g *group) regexEntry(src string, re *regexp.Regexp, groups []int) *regexEntry {
	for _, e := range g.regexes {
		if e.src == src {
			return e
		}
	}
	e := &regexEntry{src: src, re: re, groups: groups}
	g.regexes = append(g.regexes, e)
	return e
}

// appendOnce keeps a route listing one host twice from conflicting with itself.
func appendOnce(rs []*route, r *route) []*route {
	if len(rs) > 0 && rs[len(rs)-1] == r {
		return rs
	}
	return append(rs, r)
}

func (n *node) insert(segs []seg) *node {
	for _, s := range segs {
		switch s.kind {
		case segLit:
			if n.static == nil {
				n.static = map[string]*node{}
			}
			if n.static[s.lit] == nil {
				n.static[s.lit] = &node{}
			}
			n = n.static[s.lit]
		case segParam:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		}
	}
	return n
}

// finish orders every candidate list by rule 3, reports conflicts and marks
// the nodes under which prefix matching has anything to find.
func (c *compiler) finish(n *node) bool {
	c.finishList(n.routes)
	c.finishList(n.catchAll)
	c.finishList(n.prefix)
	n.prefixBelow = len(n.prefix) > 0
	for _, ch := range n.static {
		if c.finish(ch) {
			n.prefixBelow = true
		}
	}
	if n.param != nil {
		c.finish(n.param)
	}
	return n.prefixBelow
}

func (c *compiler) finishList(rs []*route) {
	slices.SortStableFunc(rs, func(a, b *route) int {
		return cmp.Or(cmp.Compare(b.nconds, a.nconds), cmp.Compare(b.priority, a.priority), cmp.Compare(a.index, b.index))
	})
	for i, a := range rs {
		for _, b := range rs[i+1:] {
			if a.key != b.key {
				continue
			}
			first, later := a, b
			if later.index < first.index {
				first, later = later, first
			}
			if c.reported[[2]int{first.index, later.index}] {
				continue
			}
			if c.reported == nil {
				c.reported = map[[2]int]bool{}
			}
			c.reported[[2]int{first.index, later.index}] = true
			c.errorf(later.pos, "route %q conflicts with route %q (line %d): same host, path, methods and conditions; the later one would never match",
				later.name, first.name, first.pos.Line)
		}
	}
}

// canonicalTemplate reports whether a configured path (a template whose
// {params} stand for canonical text) is in the form httpsyntax.CleanPath
// gives request paths, and if not, what it reads as in that form. A literal
// compared with canonical paths must be canonical itself, or it could
// never match, or match another path than it says.
func canonicalTemplate(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return p, true // validation reports it
	}
	// Each {param} becomes a placeholder that CleanPath keeps as is.
	params := templateParamRe.FindAllString(p, -1)
	n := 0
	lit := templateParamRe.ReplaceAllStringFunc(p, func(string) string { n++; return "~" + strconv.Itoa(n-1) + "~" })
	clean, err := httpsyntax.CleanPath(nil, []byte(lit), httpsyntax.RejectEscapedSlashes)
	if err != nil {
		return err.Error(), false
	}
	if string(clean) == lit {
		return p, true
	}
	want := string(clean)
	for i, param := range params {
		want = strings.Replace(want, "~"+strconv.Itoa(i)+"~", param, 1)
	}
	return want, false
}

var templateParamRe = regexp.MustCompile(`\{[^{}]*\}`)

// parseTemplate splits a match path into segments and param names.
func parseTemplate(p string) ([]seg, []string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, nil, fmt.Errorf("must start with /")
	}
	raw := strings.Split(p[1:], "/")
	segs := make([]seg, 0, len(raw))
	var names []string
	for i, s := range raw {
		if !strings.ContainsAny(s, "{}") {
			segs = append(segs, seg{kind: segLit, lit: s})
			continue
		}
		name, ok := strings.CutPrefix(s, "{")
		if name, ok = strings.CutSuffix(name, "}"); !ok || strings.ContainsAny(name, "{}") {
			return nil, nil, fmt.Errorf("segment %q: a {param} must be a whole segment", s)
		}
		kind := segParam
		if n, ok := strings.CutSuffix(name, "..."); ok {
			if i != len(raw)-1 {
				return nil, nil, fmt.Errorf("catch-all %q must be the last segment", s)
			}
			name, kind = n, segCatchAll
		}
		if name == "" || slices.Contains(names, name) {
			return nil, nil, fmt.Errorf("param name %q is empty or repeated", name)
		}
		if len(names) == MaxParams {
			return nil, nil, fmt.Errorf("more than %d params", MaxParams)
		}
		names = append(names, name)
		segs = append(segs, seg{kind: kind})
	}
	return segs, names, nil
}

func splitLiteral(p string) []seg {
	raw := strings.Split(p, "/")
	segs := make([]seg, len(raw))
	for i, s := range raw {
		segs[i] = seg{kind: segLit, lit: s}
	}
	return segs
}

// parseRewrite precompiles a rewrite.path template against the route's params.
func parseRewrite(tmpl string, params []string) ([]part, error) {
	parts := []part{}
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			parts = append(parts, part{lit: tmpl, param: -1})
			break
		}
		if i > 0 {
			parts = append(parts, part{lit: tmpl[:i], param: -1})
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed {")
		}
		name := strings.TrimSuffix(tmpl[i+1:i+j], "...")
		k := slices.Index(params, name)
		if k < 0 {
			return nil, fmt.Errorf("{%s} is not a param of the route's path (params: %v)", name, params)
		}
		parts = append(parts, part{param: k})
		tmpl = tmpl[i+j+1:]
	}
	return parts, nil
}
