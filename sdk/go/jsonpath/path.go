package jsonpath

import (
	"fmt"
	"strconv"
	"strings"
)

// Path is a parsed dot path.
type Path struct {
	text string
	segs []segment
}

type segment struct {
	key   string // the name (for a number, its text)
	index int    // the element index when key is a decimal number, else -1
	wild  bool   // "*"
}

// maxSegments bounds a path's length.
const maxSegments = 64

// ParsePath parses a dot path (see the package documentation).
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Path{}, errPathEmpty
	}
	var segs []segment
	var cur strings.Builder
	escaped := false
	flush := func() error {
		k := cur.String()
		cur.Reset()
		if k == "" {
			return fmt.Errorf("path %q: empty segment", s)
		}
		if len(segs) == maxSegments {
			return fmt.Errorf("path %q: more than %d segments", s, maxSegments)
		}
		seg := segment{key: k, index: -1}
		if k == "*" && !escaped {
			seg.wild = true
		} else if n, err := strconv.Atoi(k); err == nil && n >= 0 && k == strconv.Itoa(n) {
			seg.index = n
		}
		segs = append(segs, seg)
		escaped = false
		return nil
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return Path{}, fmt.Errorf("path %q: trailing backslash", s)
			}
			i++
			cur.WriteByte(s[i])
			escaped = true
		case '.':
			if err := flush(); err != nil {
				return Path{}, err
			}
		default:
			cur.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return Path{}, err
	}
	return Path{text: s, segs: segs}, nil
}

// String is the path as written.
func (p Path) String() string { return p.text }

// Wild reports whether the path can match more than one value ("*" or a
// name applied across an array).
func (p Path) Wild() bool {
	for _, s := range p.segs {
		if s.wild {
			return true
		}
	}
	return false
}

// Last is the final segment's name.
func (p Path) Last() string {
	if len(p.segs) == 0 {
		return ""
	}
	return p.segs[len(p.segs)-1].key
}

// step applies one segment to v, calling fn for every match with its parent
// and the member index or element index within the parent.
func step(v *Value, s segment, fn func(parent *Value, i int)) {
	if v == nil {
		return
	}
	switch v.Kind {
	case Object:
		for i := range v.Members {
			if s.wild || v.Members[i].Key == s.key {
				fn(v, i)
			}
		}
	case Array:
		switch {
		case s.wild:
			for i := range v.Items {
				fn(v, i)
			}
		case s.index >= 0:
			if s.index < len(v.Items) {
				fn(v, s.index)
			}
		default:
			// A name on an array applies to each element.
			for _, it := range v.Items {
				if it.Kind == Object {
					step(it, s, fn)
				}
			}
		}
	}
}

func child(parent *Value, i int) *Value {
	if parent.Kind == Object {
		return parent.Members[i].Value
	}
	return parent.Items[i]
}

// parents returns the values the path's final segment applies to.
func (p Path) parents(root *Value) []*Value {
	cur := []*Value{root}
	for _, s := range p.segs[:len(p.segs)-1] {
		var next []*Value
		for _, v := range cur {
			step(v, s, func(parent *Value, i int) { next = append(next, child(parent, i)) })
		}
		cur = next
	}
	return cur
}

// Get returns every value the path matches, in document order.
func (p Path) Get(root *Value) []*Value {
	if len(p.segs) == 0 {
		return nil
	}
	var out []*Value
	for _, v := range p.parents(root) {
		step(v, p.segs[len(p.segs)-1], func(parent *Value, i int) { out = append(out, child(parent, i)) })
	}
	return out
}

// First is the first value the path matches, nil when none.
func (p Path) First(root *Value) *Value {
	if m := p.Get(root); len(m) > 0 {
		return m[0]
	}
	return nil
}

// Delete removes every value the path matches and returns how many.
func (p Path) Delete(root *Value) int {
	if len(p.segs) == 0 {
		return 0
	}
	n := 0
	last := p.segs[len(p.segs)-1]
	for _, v := range p.parents(root) {
		var hits []struct {
			parent *Value
			i      int
		}
		step(v, last, func(parent *Value, i int) {
			hits = append(hits, struct {
				parent *Value
				i      int
			}{parent, i})
		})
		// Remove back to front so earlier indexes stay valid.
		for j := len(hits) - 1; j >= 0; j-- {
			h := hits[j]
			if h.parent.Kind == Object {
				h.parent.Members = append(h.parent.Members[:h.i], h.parent.Members[h.i+1:]...)
			} else {
				h.parent.Items = append(h.parent.Items[:h.i], h.parent.Items[h.i+1:]...)
			}
			n++
		}
	}
	return n
}

// Set puts a copy of val at every place the path names, creating missing
// objects on the way, and returns how many places it set. A final "*"
// replaces every member or element; a final number replaces an existing
// element; a final name sets that member of each object reached (or of each
// object element of an array reached).
func (p Path) Set(root *Value, val *Value) int {
	if len(p.segs) == 0 || root == nil {
		return 0
	}
	cur := []*Value{root}
	for _, s := range p.segs[:len(p.segs)-1] {
		var next []*Value
		for _, v := range cur {
			if v.Kind == Object && !s.wild && v.Get(s.key) == nil {
				v.Set(s.key, NewObject())
			}
			step(v, s, func(parent *Value, i int) { next = append(next, child(parent, i)) })
		}
		cur = next
	}
	n := 0
	last := p.segs[len(p.segs)-1]
	for _, v := range cur {
		set := func(parent *Value, i int) {
			if parent.Kind == Object {
				parent.Members[i].Value = val.Clone()
			} else {
				parent.Items[i] = val.Clone()
			}
			n++
		}
		switch {
		case v.Kind == Object && !last.wild:
			v.Set(last.key, val.Clone())
			n++
		case v.Kind == Array && !last.wild && last.index < 0:
			for _, it := range v.Items {
				if it.Kind == Object {
					it.Set(last.key, val.Clone())
					n++
				}
			}
		default:
			step(v, last, set)
		}
	}
	return n
}

// Rename gives every member the path matches the name to, in place (its
// position is kept; a member already named to is dropped), and returns how
// many it renamed. Array elements have no names: paths ending in a number
// or "*" over an array rename nothing there.
func (p Path) Rename(root *Value, to string) int {
	if len(p.segs) == 0 {
		return 0
	}
	n := 0
	last := p.segs[len(p.segs)-1]
	for _, v := range p.parents(root) {
		type hit struct{ obj, val *Value }
		var hits []hit
		step(v, last, func(parent *Value, i int) {
			if parent.Kind == Object {
				hits = append(hits, hit{parent, parent.Members[i].Value})
			}
		})
		// Members are found again by value: a rename may drop another
		// member and shift indexes.
		for _, h := range hits {
			i := -1
			for k := range h.obj.Members {
				if h.obj.Members[k].Value == h.val {
					i = k
					break
				}
			}
			if i < 0 || h.obj.Members[i].Key == to {
				continue
			}
			h.obj.Members[i].Key = to
			for k := range h.obj.Members {
				if k != i && h.obj.Members[k].Key == to {
					h.obj.Members = append(h.obj.Members[:k], h.obj.Members[k+1:]...)
					break
				}
			}
			n++
		}
	}
	return n
}

// Move moves the value at from to to (creating objects on the way) and
// reports whether it did: from must match exactly one value.
func Move(root *Value, from, to Path) bool {
	m := from.Get(root)
	if len(m) != 1 {
		return false
	}
	v := m[0]
	from.Delete(root)
	return to.Set(root, v) > 0
}
