package config

import (
	"fmt"
	"strings"

	"github.com/wasmgate/wasmgate/host/shadow"
	"github.com/wasmgate/wasmgate/host/traffic"
)

// scope is what a config defines that its parts refer to by name.
type scope struct {
	upstreams, plugins, segments, flags *names
}

// names is the set of names one kind of config item defines, for messages
// that say which exist when a reference names none of them.
type names struct {
	kind string // "upstream", "plugin", "segment", "flag"
	pos  map[string]Pos
	list []string
}

func newNames(kind string) *names { return &names{kind: kind, pos: map[string]Pos{}} }

// define adds a name, reporting a duplicate.
func (n *names) define(v *validator, name string, p Pos) {
	if first, dup := n.pos[name]; dup && name != "" {
		v.errorf(p, "duplicate %s name %q (first at %d:%d)", n.kind, name, first.Line, first.Col)
	} else if !dup {
		n.pos[name] = p
		n.list = append(n.list, name)
	}
}

// check reports a reference to a name that is not defined.
func (n *names) check(v *validator, p Pos, pfx, name string) bool {
	if _, ok := n.pos[name]; ok || name == "" {
		return true
	}
	defined := "none are defined"
	if len(n.list) > 0 {
		defined = "defined: " + nameList(n.list)
	}
	v.errorf(p, "%sunknown %s %q (%s)", pfx, n.kind, name, defined)
	return false
}

// source checks a user-key source (traffic.sticky, route sticky, segment source).
func (v *validator) source(s string, p Pos, pfx, key string) {
	if s == "" {
		return
	}
	if _, err := traffic.ParseSource(s); err != nil {
		v.errorf(p, "%s%s: %v", pfx, key, err)
	}
}

func (v *validator) percent(n int, p Pos, pfx, key string) {
	if n < 0 || n > 100 {
		v.errorf(p, "%s%s must be 0 to 100, got %d", pfx, key, n)
	}
}

// traffic checks traffic: and defines its segments and flags.
func (v *validator) traffic(t *Traffic, segments, flags *names) {
	v.source(t.Sticky, t.At.Of("sticky", t.Pos), "traffic: ", "sticky")
	for i := range t.Segments {
		s := &t.Segments[i]
		segments.define(v, s.Name, s.At.Of("name", s.Pos))
		pfx := label("segment", s.Name, i)
		v.source(s.Source, s.At.Of("source", s.Pos), pfx, "source")
		switch {
		case s.Source != "" && len(s.Values) == 0:
			v.errorf(s.At.Of("source", s.Pos), "%ssource without values", pfx)
		case s.Source == "" && len(s.Values) > 0:
			v.errorf(s.At.Of("values", s.Pos), "%svalues need a source (header:NAME, cookie:NAME, query:NAME, consumer or claim:PATH)", pfx)
		case len(s.Keys) == 0 && len(s.Values) == 0 && s.Percent == nil:
			v.errorf(s.Pos, "%sneeds keys, source and values, or percent", pfx)
		}
		if len(s.Keys) > 0 && t.Sticky == "" {
			v.errorf(s.At.Of("keys", s.Pos), "%skeys are values of traffic.sticky, which is not set", pfx)
		}
		if s.Percent != nil {
			v.percent(*s.Percent, s.At.Of("percent", s.Pos), pfx, "percent")
		}
	}
	for i := range t.Flags {
		f := &t.Flags[i]
		flags.define(v, f.Name, f.At.Of("name", f.Pos))
		pfx := label("flag", f.Name, i)
		v.percent(f.Percent, f.At.Of("percent", f.Pos), pfx, "percent")
		segments.check(v, f.At.Of("segment", f.Pos), pfx, f.Segment)
	}
}

// routeTraffic checks where a route sends its traffic: one upstream, a
// split, or active and standby; and its shadow.
func (v *validator) routeTraffic(r *Route, pfx string, sc *scope) {
	var forms []string
	if r.Upstream != "" {
		forms = append(forms, "upstream")
	}
	if len(r.Split) > 0 {
		forms = append(forms, "split")
	}
	if r.Active != "" || r.Standby != "" {
		forms = append(forms, "active/standby")
	}
	switch {
	case len(forms) == 0 && len(r.Plugins) == 0:
		v.errorf(r.Pos, "%sneeds upstream, split, or active and standby (or plugins that answer)", pfx)
	case len(forms) > 1:
		v.errorf(r.At.Of("split", r.At.Of("active", r.Pos)), "%suse one of upstream, split, active/standby (got %s)", pfx, joinAnd(forms))
	}
	sc.upstreams.check(v, r.At.Of("upstream", r.Pos), pfx, r.Upstream)
	v.split(r, pfx, sc)
	if (r.Active == "") != (r.Standby == "") {
		v.errorf(r.At.Of("active", r.At.Of("standby", r.Pos)), "%sactive and standby go together", pfx)
	} else if r.Active != "" && r.Active == r.Standby {
		v.errorf(r.At.Of("standby", r.Pos), "%sactive and standby are both %q", pfx, r.Active)
	}
	sc.upstreams.check(v, r.At.Of("active", r.Pos), pfx, r.Active)
	sc.upstreams.check(v, r.At.Of("standby", r.Pos), pfx, r.Standby)
	v.source(r.Sticky, r.At.Of("sticky", r.Pos), pfx, "sticky")
	for i := range r.Match.Segments {
		s := &r.Match.Segments[i]
		sc.segments.check(v, v.elem(s, r.Match.At.Of("segments", r.Match.Pos)), pfx+"match: ", *s)
	}
	for i := range r.Match.Flags {
		f := &r.Match.Flags[i]
		sc.flags.check(v, v.elem(f, r.Match.At.Of("flags", r.Match.Pos)), pfx+"match: ", *f)
	}
	v.shadow(r, pfx, sc)
}

// split checks a route's split entries: segment entries name a segment and
// no weight; weighted entries share 0..100 weights, at least one above 0.
func (v *validator) split(r *Route, pfx string, sc *scope) {
	if len(r.Split) == 0 {
		return
	}
	weighted, positive := map[string]bool{}, false
	for i := range r.Split {
		s := &r.Split[i]
		sc.upstreams.check(v, s.At.Of("upstream", s.Pos), pfx, s.Upstream)
		if s.Segment != "" {
			sc.segments.check(v, s.At.Of("segment", s.Pos), pfx+"split: ", s.Segment)
			if _, written := s.At["weight"]; written {
				v.errorf(s.At.Of("weight", s.Pos), "%sa segment entry takes every user of the segment: no weight", pfx)
			}
			continue
		}
		if _, written := s.At["weight"]; !written {
			v.errorf(s.Pos, "%ssplit entry needs weight (0 to 100) or segment", pfx)
		}
		v.percent(s.Weight, s.At.Of("weight", s.Pos), pfx, "split weight")
		if weighted[s.Upstream] {
			v.errorf(s.At.Of("upstream", s.Pos), "%supstream %q has two weights in the split", pfx, s.Upstream)
		}
		weighted[s.Upstream] = true
		positive = positive || s.Weight > 0
	}
	if !positive {
		v.errorf(r.At.Of("split", r.Pos), "%ssplit needs a weighted entry with weight above 0 (for users in no segment)", pfx)
	}
}

func (v *validator) shadow(r *Route, pfx string, sc *scope) {
	s := r.Shadow
	if s == nil {
		return
	}
	pfx += "shadow: "
	if sc.upstreams.check(v, s.At.Of("upstream", s.Pos), pfx, s.Upstream) && s.Upstream != "" &&
		(s.Upstream == r.Upstream || s.Upstream == r.Active || s.Upstream == r.Standby) {
		v.errorf(s.At.Of("upstream", s.Pos), "%supstream %q is the route's own: a shadow compares a candidate with it", pfx, s.Upstream)
	}
	v.percent(s.Percent, s.At.Of("percent", s.Pos), pfx, "percent")
	if s.MaxInFlight < 1 {
		v.errorf(s.At.Of("max_in_flight", s.Pos), "%smax_in_flight must be >= 1", pfx)
	}
	if s.Timeout <= 0 {
		v.errorf(s.At.Of("timeout", s.Pos), "%stimeout must be > 0", pfx)
	}
	c := &s.Compare
	if _, err := shadow.NewComparer(c.Spec()); err != nil {
		v.errorf(s.At.Of("compare", s.Pos), "%scompare: %v", pfx, err)
	}
}

// Spec is the comparison the shadow package runs for these settings.
func (c *ShadowCompare) Spec() shadow.Spec {
	return shadow.Spec{Status: c.Status == nil || *c.Status, Headers: c.Headers, Body: c.Body, Ignore: c.Ignore}
}

// joinAnd joins names as "a and b" or "a, b and c".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return fmt.Sprintf("%s and %s", strings.Join(s[:len(s)-1], ", "), s[len(s)-1])
}
