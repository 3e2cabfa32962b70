package router

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// Match finds the route for req by the precedence documented in the package
// and fills res. path is the request's path in canonical form
// (httpsyntax.CleanPath): the path the upstream receives. It returns false
// when no route matches. It does not allocate unless a path_regex with
// named groups is tried.
//
// Segment and flag conditions are answered by res.Traits; without Traits
// they never hold.
func (t *Table) Match(req *fasthttp.Request, path []byte, res *Result) bool {
	// fasthttp lower-cases URI hosts, so no case folding is needed here.
	q := subject{req: req, traits: res.Traits}
	return t.match(hostOnly(req.Host()), path, &q, res)
}

// subject is the request being matched, with what answers its segment and
// flag conditions.
type subject struct {
	req    *fasthttp.Request
	traits Traits
}

func (t *Table) match(host, path []byte, req *subject, res *Result) bool {
	if g := t.exact[string(host)]; g != nil && g.match(req, path, res) {
		return true
	}
	if len(t.wild) > 0 {
		// Probe ".b.example.com", then ".example.com", ...: longest suffix first,
		// always leaving at least one label for the "*".
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				if g := t.wild[string(host[i:])]; g != nil && g.match(req, path, res) {
					return true
				}
			}
		}
	}
	return t.any != nil && t.any.match(req, path, res)
}

// hostOnly strips the port and a trailing dot from a Host value.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' { // IPv6 literal
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return bytes.TrimSuffix(h, []byte{'.'})
}

// match tries the group's trie, then its regexes, then its prefixes.
func (g *group) match(req *subject, path []byte, res *Result) bool {
	p := &res.Params
	p.n = 0
	var r *route
	pos := len(path) + 1 // no segments: only a "/" prefix can match
	if len(path) > 0 && path[0] == '/' {
		pos = 1
		r = g.root.find(req, path, 1, p)
	}
	for i := 0; r == nil && i < len(g.regexes); i++ {
		r = g.regexes[i].match(req, path, p)
	}
	if r == nil && g.root.prefixBelow {
		p.n = 0
		r = g.root.findPrefix(req, path, pos)
	}
	if r == nil {
		return false
	}
	res.Route = r.index
	copy(p.names[:p.n], r.params)
	return true
}

// segEnd returns the end of the segment starting at pos.
func segEnd(path []byte, pos int) int {
	if i := bytes.IndexByte(path[pos:], '/'); i >= 0 {
		return pos + i
	}
	return len(path)
}

// find returns the first route, in precedence order, whose exact or template
// path matches path[pos:] below n. It backtracks: literal, then param, then
// catch-all, pushing and popping param values on p.
func (n *node) find(req *subject, path []byte, pos int, p *Params) *route {
	end := segEnd(path, pos)
	seg := path[pos:end]
	if c := n.static[string(seg)]; c != nil {
		if r := c.next(req, path, end, p); r != nil {
			return r
		}
	}
	if n.param != nil && len(seg) > 0 && p.n < MaxParams {
		p.vals[p.n] = seg
		p.n++
		if r := n.param.next(req, path, end, p); r != nil {
			return r
		}
		p.n--
	}
	if len(n.catchAll) > 0 && p.n < MaxParams {
		p.vals[p.n] = path[pos:]
		p.n++
		if r := pick(n.catchAll, req); r != nil {
			return r
		}
		p.n--
	}
	return nil
}

func (n *node) next(req *subject, path []byte, end int, p *Params) *route {
	if end == len(path) {
		return pick(n.routes, req)
	}
	return n.find(req, path, end+1, p)
}

// findPrefix returns the route of the deepest prefix that matches path and
// whose conditions hold, walking outward when they do not.
func (n *node) findPrefix(req *subject, path []byte, pos int) *route {
	if pos <= len(path) {
		end := segEnd(path, pos)
		if c := n.static[string(path[pos:end])]; c != nil && c.prefixBelow {
			if r := c.findPrefix(req, path, end+1); r != nil {
				return r
			}
		}
	}
	return pick(n.prefix, req)
}

func (e *regexEntry) match(req *subject, path []byte, p *Params) *route {
	if len(e.groups) == 0 {
		if !e.re.Match(path) {
			return nil
		}
		return pick(e.routes, req)
	}
	loc := e.re.FindSubmatchIndex(path)
	if loc == nil {
		return nil
	}
	r := pick(e.routes, req)
	if r == nil {
		return nil
	}
	for i, gi := range e.groups {
		p.vals[i] = nil
		if loc[2*gi] >= 0 {
			p.vals[i] = path[loc[2*gi]:loc[2*gi+1]]
		}
	}
	p.n = len(e.groups)
	return r
}

// pick returns the first route of a rule-3-ordered list whose conditions hold.
func pick(rs []*route, req *subject) *route {
	for _, r := range rs {
		if r.ok(req) {
			return r
		}
	}
	return nil
}

func (r *route) ok(q *subject) bool {
	req := q.req
	if len(r.methods) > 0 {
		m := req.Header.Method()
		i := 0
		for i < len(r.methods) && r.methods[i] != string(m) {
			i++
		}
		if i == len(r.methods) {
			return false
		}
	}
	for i := range r.headers {
		c := &r.headers[i]
		vs := req.Header.PeekAll(c.name)
		if c.absent {
			if len(vs) > 0 {
				return false
			}
			continue
		}
		j := 0
		for j < len(vs) && !c.matches(vs[j]) {
			j++
		}
		if j == len(vs) {
			return false
		}
	}
	if len(r.query) > 0 {
		args := req.URI().QueryArgs()
		for i := range r.query {
			c := &r.query[i]
			if !c.holds(args.Peek(c.name), args.Has(c.name)) {
				return false
			}
		}
	}
	for i := range r.cookies {
		c := &r.cookies[i]
		v := req.Header.Cookie(c.name)
		if !c.holds(v, v != nil) {
			return false
		}
	}
	for _, s := range r.segments {
		if q.traits == nil || !q.traits.InSegment(s) {
			return false
		}
	}
	for _, f := range r.flags {
		if q.traits == nil || !q.traits.FlagOn(f) {
			return false
		}
	}
	return true
}

func (c *cond) holds(v []byte, present bool) bool {
	if c.absent {
		return !present
	}
	return present && c.matches(v)
}

func (c *cond) matches(v []byte) bool {
	switch {
	case c.re != nil:
		return c.re.Match(v)
	case c.hasValue:
		return string(v) == c.value
	}
	return true
}

// Rewrite appends to dst the upstream path for the matched route: the
// rewrite.path template filled from res.Params when set, else path with
// rewrite.strip_prefix removed (on a segment boundary; an empty rest becomes
// "/"), else path unchanged. dst must not alias path. The query string is not
// part of path; the caller keeps it.
func (t *Table) Rewrite(dst []byte, path []byte, res *Result) []byte {
	if res.Route < 0 || res.Route >= len(t.routes) {
		return append(dst, path...)
	}
	r := t.routes[res.Route]
	if r.tmpl != nil {
		for _, pt := range r.tmpl {
			if pt.param < 0 {
				dst = append(dst, pt.lit...)
			} else if pt.param < res.Params.n {
				dst = append(dst, res.Params.vals[pt.param]...)
			}
		}
		return dst
	}
	if s := r.strip; s != "" && len(path) >= len(s) && string(path[:len(s)]) == s && (len(path) == len(s) || path[len(s)] == '/') {
		if len(path) == len(s) {
			return append(dst, '/')
		}
		return append(dst, path[len(s):]...)
	}
	return append(dst, path...)
}
