package shadow

import (
	"bytes"
	"slices"
	"strconv"
)

// The JSON diff walks the two parsed trees side by side (jsonparse.go),
// object members by sorted key, array items by index, carrying the ignore
// paths that still match the path walked so far.

// differ is the state of one Diff, pooled.
type differ struct {
	c       *Comparer
	out     []Difference
	more    bool
	doc     [2]parser // primary, candidate
	states  []state   // ignore-path matches in progress, a run per depth
	segs    []pathSeg // the path from the body's root to the node compared
	scratch [2][]byte
}

// state is ignore path pat matched up to its segment pos.
type state struct{ pat, pos int32 }

type pathSeg struct {
	key   []byte
	index int
	isKey bool
}

// release drops what a huge body made grow, so the pool does not keep it.
func (d *differ) release() {
	d.c, d.out = nil, nil
	for i := range d.doc {
		p := &d.doc[i]
		p.b = nil
		if cap(p.nodes) > 1<<15 || cap(p.stack) > 1<<15 {
			p.nodes, p.stack = nil, nil
		}
		if cap(p.arena) > 1<<16 {
			p.arena = nil
		}
		if cap(p.brackets) > 1<<12 {
			p.brackets = nil
		}
	}
	for i := range d.scratch {
		if cap(d.scratch[i]) > 1<<12 {
			d.scratch[i] = nil
		}
	}
	clear(d.segs[:cap(d.segs)]) // they point into bodies
	d.segs = d.segs[:0]
}

func (d *differ) jsonBody() {
	d.states, d.segs = d.states[:0], d.segs[:0]
	for i := range d.c.ignore {
		d.push(0, int32(i), 0)
	}
	d.cmp(d.doc[0].root(), d.doc[1].root(), 0, len(d.states))
}

// cmp compares two values; states[s0:s1] are the ignore paths that match
// the path so far without having ended.
func (d *differ) cmp(x, y *node, s0, s1 int) {
	if d.full() {
		return
	}
	P, C := &d.doc[0], &d.doc[1]
	if x.kind != y.kind {
		kind := KindType
		if isBool(x.kind) && isBool(y.kind) {
			kind = KindChanged
		}
		d.addHere(kind, P.show(x), C.show(y))
		return
	}
	switch x.kind {
	case vNumber:
		if !numEqual(P.raw(x), C.raw(y)) {
			d.addHere(KindChanged, P.show(x), C.show(y))
		}
	case vString:
		if !bytes.Equal(P.str(x), C.str(y)) {
			d.addHere(KindChanged, P.show(x), C.show(y))
		}
	case vDeep:
		if !bytes.Equal(P.raw(x), C.raw(y)) {
			d.addHere(KindTooDeep, P.show(x), C.show(y))
		}
	case vArray:
		if x.b != y.b {
			d.addHere(KindLength, "length "+strconv.Itoa(int(x.b)), "length "+strconv.Itoa(int(y.b)))
		}
		for i := range min(x.b, y.b) {
			if d.full() {
				return
			}
			d.segs = append(d.segs, pathSeg{index: int(i)})
			t0, t1, ignored := d.step(s0, s1)
			if !ignored {
				d.cmp(&P.nodes[x.a+i], &C.nodes[y.a+i], t0, t1)
			}
			d.states, d.segs = d.states[:t0], d.segs[:len(d.segs)-1]
		}
	case vObject:
		d.object(x, y, s0, s1)
	}
}

// object walks two members lists, both sorted by key.
func (d *differ) object(x, y *node, s0, s1 int) {
	P, C := &d.doc[0], &d.doc[1]
	i, j := x.a, y.a
	iEnd, jEnd := x.a+x.b, y.a+y.b
	for i < iEnd || j < jEnd {
		if d.full() {
			return
		}
		var order int
		switch {
		case i == iEnd:
			order = 1
		case j == jEnd:
			order = -1
		default:
			order = bytes.Compare(P.key(&P.nodes[i]), C.key(&C.nodes[j]))
		}
		var key []byte
		if order <= 0 {
			key = P.key(&P.nodes[i])
		} else {
			key = C.key(&C.nodes[j])
		}
		d.segs = append(d.segs, pathSeg{key: key, isKey: true})
		t0, t1, ignored := d.step(s0, s1)
		switch {
		case ignored:
		case order == 0:
			d.cmp(&P.nodes[i], &C.nodes[j], t0, t1)
		case order < 0:
			d.addHere(KindMissing, P.show(&P.nodes[i]), Absent)
		default:
			d.addHere(KindExtra, Absent, C.show(&C.nodes[j]))
		}
		d.states, d.segs = d.states[:t0], d.segs[:len(d.segs)-1]
		if order <= 0 {
			i++
		}
		if order >= 0 {
			j++
		}
	}
}

func isBool(k vkind) bool { return k == vTrue || k == vFalse }

// step advances the ignore paths in states[s0:s1] over the last segment of
// d.segs, appending the survivors; ignored is true when one has ended.
func (d *differ) step(s0, s1 int) (t0, t1 int, ignored bool) {
	t0 = len(d.states)
	seg := d.segs[len(d.segs)-1]
	for k := s0; k < s1; k++ {
		st := d.states[k]
		want := d.c.ignore[st.pat][st.pos]
		var match bool
		switch want.kind {
		case segDeep:
			d.push(t0, st.pat, st.pos) // ** takes this segment and stays
		case segAny:
			match = true
		case segAnyIndex:
			match = !seg.isKey
		case segIndex:
			match = !seg.isKey && seg.index == want.index
		case segKey:
			match = seg.isKey && string(seg.key) == want.key
		}
		if match {
			d.push(t0, st.pat, st.pos+1)
		}
	}
	t1 = len(d.states)
	for _, st := range d.states[t0:t1] {
		if int(st.pos) == len(d.c.ignore[st.pat]) {
			return t0, t1, true
		}
	}
	return t0, t1, false
}

// push adds state (pat, pos) to the run starting at t0, once, and, as **
// also matches no segment at all, the states past each ** it stands on.
func (d *differ) push(t0 int, pat, pos int32) {
	p := d.c.ignore[pat]
	for {
		st := state{pat, pos}
		if !slices.Contains(d.states[t0:], st) {
			d.states = append(d.states, st)
		}
		if int(pos) < len(p) && p[pos].kind == segDeep {
			pos++
			continue
		}
		return
	}
}

// addHere lists a difference at the current path.
func (d *differ) addHere(kind Kind, primary, candidate string) {
	if len(d.out) >= MaxDifferences {
		d.more = true
		return
	}
	b := append(d.scratch[0][:0], "body"...)
	for _, s := range d.segs {
		if s.isKey {
			b = appendKey(b, s.key, false)
		} else {
			b = appendIndex(b, s.index)
		}
		if len(b) > 4*MaxValueSize {
			break // cut below; a path that long is read, not pasted
		}
	}
	d.scratch[0] = b
	d.add(cutText(string(b), 4*MaxValueSize), kind, primary, candidate)
}

// show writes a value as compact JSON, cut at MaxValueSize; it reads no
// further into a large value than it writes.
func (p *parser) show(n *node) string {
	raw := p.raw(n)
	out := make([]byte, 0, min(len(raw), MaxValueSize+8))
	inStr, esc := false, false
	for _, c := range raw {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inStr = true
		}
		out = append(out, c)
		if len(out) > MaxValueSize {
			return string(cutUTF8(out, MaxValueSize)) + "…"
		}
	}
	return string(out)
}
