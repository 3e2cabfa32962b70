package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/router"
	"github.com/wasmgate/wasmgate/host/traffic"
)

// trafficView is the traffic state of one snapshot compiled for the
// request path: the segments, the flags and where each route sends its
// requests. A run-time change (a split, a switch, a flag) compiles a new
// view and swaps it into the snapshot; a request reads the view once.
type trafficView struct {
	sticky   traffic.Source // traffic.sticky: segments' and flags' user key
	segments traffic.Segments
	flags    map[string]*traffic.Flag
	routes   []routeTraffic // by route index
}

// routeTraffic is where one route sends its requests.
type routeTraffic struct {
	single    *managedUpstream // the upstream, or blue-green's active side
	bySegment []segmentArm     // split entries with a segment, in order
	split     *traffic.Split   // the weighted entries; nil with single
	arms      []*managedUpstream
	sticky    traffic.Source // the user key the split hashes
}

type segmentArm struct {
	segment *traffic.Segment
	up      *managedUpstream
}

// Interface guards: the request answers segment and flag questions for
// the router and the traffic package.
var (
	_ router.Traits   = (*request)(nil)
	_ traffic.Request = (*request)(nil)
	_ abi.Flags       = (*request)(nil)
)

// stickyState caches a request's user-key hashes: the global one (segments
// and flags) and its route's (the split), each computed once it is known.
// A request without a key gets one random hash, drawn once, so that every
// question about it gets one answer. A consumer the request does not have
// yet is not cached as absent: an auth plugin may name it later.
type stickyState struct {
	known, has   bool
	hash         uint64
	routeKnown   bool
	routeHas     bool
	routeHash    uint64
	random       uint64         // 0: not drawn yet
	claims       map[string]any // the bearer token's payload, once parsed
	claimsParsed bool
	claimBuf     []byte
}

func (s *stickyState) reset() {
	s.known, s.routeKnown, s.claimsParsed = false, false, false
	s.random = 0
	s.claims = nil
}

// keyless is the request's random hash.
func (s *stickyState) keyless() uint64 {
	for s.random == 0 {
		s.random = traffic.RandomHash()
	}
	return s.random
}

// lookup hashes the value src names in rq, caching the result unless it
// is an absent consumer.
func (rq *request) lookup(src traffic.Source, known, has *bool, hash *uint64) (uint64, bool) {
	if !*known {
		v := rq.Value(src)
		switch {
		case v != nil:
			*known, *has, *hash = true, true, traffic.Hash(v)
		case src.Kind != traffic.SourceConsumer:
			*known, *has = true, false
		default:
			return rq.sticky.keyless(), false
		}
	}
	if !*has {
		return rq.sticky.keyless(), false
	}
	return *hash, true
}

// Value is the value src names in the request, nil when it has none.
func (rq *request) Value(src traffic.Source) []byte {
	req := &rq.ctx.Request
	var v []byte
	switch src.Kind {
	case traffic.SourceHeader:
		v = req.Header.Peek(src.Name)
	case traffic.SourceCookie:
		v = req.Header.Cookie(src.Name)
	case traffic.SourceQuery:
		v = req.URI().QueryArgs().Peek(src.Name)
	case traffic.SourceConsumer:
		v = rq.scope.Consumer
	case traffic.SourceClaim:
		v = rq.claim(src.Name)
	}
	if len(v) == 0 {
		return nil
	}
	return v
}

// StickyHash is the hash of the request's traffic.sticky key; without one,
// the request's random hash and false.
func (rq *request) StickyHash() (uint64, bool) {
	s := &rq.sticky
	return rq.lookup(rq.traffic().sticky, &s.known, &s.has, &s.hash)
}

// routeHash is the hash the route's split picks by: of its sticky key, or
// the request's random hash when it has none.
func (rq *request) routeHash(src traffic.Source) uint64 {
	s := &rq.sticky
	h, _ := rq.lookup(src, &s.routeKnown, &s.routeHas, &s.routeHash)
	return h
}

// InSegment answers a match.segments condition.
func (rq *request) InSegment(name string) bool {
	seg := rq.traffic().segments[name]
	return seg != nil && seg.Contains(rq)
}

// FlagOn answers a match.flags condition and the flag_enabled host function.
func (rq *request) FlagOn(name string) bool {
	f := rq.traffic().flags[name]
	return f != nil && f.On(rq)
}

// FlagState answers the flag_enabled host function.
func (rq *request) FlagState(name []byte) (on, known bool) {
	f := rq.traffic().flags[string(name)]
	if f == nil {
		return false, false
	}
	return f.On(rq), true
}

// traffic is the view of the request's snapshot.
func (rq *request) traffic() *trafficView { return rq.snap.traffic.Load() }

// pickUpstream chooses the request's upstream: blue-green's active side or
// the only upstream; else the first segment entry the user is in; else the
// weighted split by the user's key.
func (rq *request) pickUpstream() *managedUpstream {
	rt := &rq.traffic().routes[rq.route.index]
	if rt.single != nil {
		return rt.single
	}
	for i := range rt.bySegment {
		if rt.bySegment[i].segment.Contains(rq) {
			return rt.bySegment[i].up
		}
	}
	return rt.arms[rt.split.Pick(rq.routeHash(rt.sticky))]
}

// pickAny chooses an upstream for a request of nobody in particular (a
// cache fill): the active side, or the weighted split at random.
func (v *trafficView) pickAny(index int) *managedUpstream {
	rt := &v.routes[index]
	if rt.single != nil {
		return rt.single
	}
	return rt.arms[rt.split.Pick(traffic.RandomHash())]
}

// claim reads a claim of the request's bearer token, by dotted path, as
// text (a string's value, or the JSON of anything else). The token's
// signature is not checked here: an auth plugin on the route does that
// before the upstream is chosen, and match conditions, decided before
// plugins run, document that a client can claim anything.
func (rq *request) claim(path string) []byte {
	s := &rq.sticky
	if !s.claimsParsed {
		s.claimsParsed = true
		s.claims = parseBearerClaims(rq.ctx.Request.Header.Peek("Authorization"), &s.claimBuf)
	}
	var v any = s.claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[part]; !ok {
			return nil
		}
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(x)
	default:
		b, _ := json.Marshal(x)
		return b
	}
}

// parseBearerClaims decodes the payload of "Bearer <JWT>"; nil when the
// header holds no such token.
func parseBearerClaims(auth []byte, buf *[]byte) map[string]any {
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(string(auth[:len(prefix)]), prefix) {
		return nil
	}
	parts := bytes.Split(bytes.TrimSpace(auth[len(prefix):]), []byte{'.'})
	if len(parts) != 3 {
		return nil
	}
	payload := parts[1]
	n := base64.RawURLEncoding.DecodedLen(len(payload))
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	n, err := base64.RawURLEncoding.Decode(b, payload)
	if err != nil {
		return nil
	}
	b = b[:n]
	var claims map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&claims) != nil {
		return nil
	}
	return claims
}

// splitEntry is a split entry as the file and PUT /routes/NAME/split write
// it: a weighted upstream, or every user of a segment.
type splitEntry struct {
	Upstream string `json:"upstream"`
	Weight   *int   `json:"weight,omitempty"`
	Segment  string `json:"segment,omitempty"`
}

// fileSplit is a route's split from the config, in the form a run-time
// change writes.
func fileSplit(rc *config.Route) []splitEntry {
	out := make([]splitEntry, len(rc.Split))
	for i, s := range rc.Split {
		out[i] = splitEntry{Upstream: s.Upstream, Segment: s.Segment}
		if s.Segment == "" {
			w := s.Weight
			out[i].Weight = &w
		}
	}
	return out
}

// compileSplit checks a split (from the file or an admin call) against the
// snapshot's upstreams and segments and compiles it into rt.
func compileSplit(entries []splitEntry, ups map[string]*managedUpstream, segs traffic.Segments, rt *routeTraffic) error {
	var arms []traffic.Arm
	rt.bySegment, rt.arms = nil, nil
	for i, e := range entries {
		up := ups[e.Upstream]
		if up == nil {
			return fmt.Errorf("entry %d: unknown upstream %q", i+1, e.Upstream)
		}
		if e.Segment != "" {
			seg := segs[e.Segment]
			if seg == nil {
				return fmt.Errorf("entry %d: unknown segment %q", i+1, e.Segment)
			}
			if e.Weight != nil {
				return fmt.Errorf("entry %d: a segment entry takes every user of the segment: no weight", i+1)
			}
			rt.bySegment = append(rt.bySegment, segmentArm{segment: seg, up: up})
			continue
		}
		if e.Weight == nil {
			return fmt.Errorf("entry %d: needs weight (0 to 100) or segment", i+1)
		}
		arms = append(arms, traffic.Arm{Name: e.Upstream, Weight: *e.Weight})
		rt.arms = append(rt.arms, up)
	}
	split, err := traffic.NewSplit(arms)
	if err != nil {
		return err
	}
	rt.split = split
	if len(rt.bySegment) == 0 {
		// One arm with a weight: no user key to hash.
		var only *managedUpstream
		for i, a := range arms {
			if a.Weight > 0 {
				if only != nil {
					return nil
				}
				only = rt.arms[i]
			}
		}
		rt.single = only
	}
	return nil
}

// The kinds of traffic state a route or flag has in the store.
const (
	kindSplit  = "split"  // a route's split: []splitEntry
	kindSwitch = "switch" // a blue-green route's active side: switchState
	kindFlag   = "flag"   // a feature flag: traffic.FlagSpec
)

// switchState is a blue-green route's state in the store.
type switchState struct {
	Active string `json:"active"`
}

// trafficItems is what the config file says of the state the admin API
// changes at run time, as the store keeps it.
func trafficItems(cfg *config.Config) (map[traffic.Key]json.RawMessage, error) {
	items := map[traffic.Key]json.RawMessage{}
	add := func(kind, name string, v any) error {
		b, err := json.Marshal(v)
		items[traffic.Key{Kind: kind, Name: name}] = b
		return err
	}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		var err error
		switch {
		case len(rc.Split) > 0:
			err = add(kindSplit, rc.Name, fileSplit(rc))
		case rc.Upstream != "":
			// A route with one upstream is a split of one entry: a run-time
			// split of it is made against that, and an edit of its upstream
			// in the file ends the run-time split (the file wins).
			hundred := 100
			err = add(kindSplit, rc.Name, []splitEntry{{Upstream: rc.Upstream, Weight: &hundred}})
		case rc.Active != "":
			err = add(kindSwitch, rc.Name, switchState{Active: rc.Active})
		}
		if err != nil {
			return nil, err
		}
	}
	for _, f := range cfg.Traffic.Flags {
		if err := add(kindFlag, f.Name, traffic.FlagSpec{Enabled: f.Enabled, Percent: &f.Percent, Segment: f.Segment}); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// compileTraffic compiles the traffic state v for snap's routes.
func compileTraffic(snap *snapshot, v traffic.View) (*trafficView, error) {
	tc := &snap.cfg.Traffic
	tv := &trafficView{flags: map[string]*traffic.Flag{}, routes: make([]routeTraffic, len(snap.routes))}
	var err error
	if tc.Sticky != "" {
		if tv.sticky, err = traffic.ParseSource(tc.Sticky); err != nil {
			return nil, fmt.Errorf("traffic.sticky: %w", err)
		}
	}
	specs := make([]traffic.SegmentSpec, len(tc.Segments))
	for i, s := range tc.Segments {
		specs[i] = traffic.SegmentSpec{Name: s.Name, Keys: s.Keys, Values: s.Values, Percent: s.Percent}
		if len(s.Keys) > 0 {
			specs[i].KeySource = tv.sticky
		}
		if s.Source != "" {
			if specs[i].ValueSource, err = traffic.ParseSource(s.Source); err != nil {
				return nil, fmt.Errorf("segment %q: %w", s.Name, err)
			}
		}
	}
	if tv.segments, err = traffic.NewSegments(specs); err != nil {
		return nil, err
	}
	for _, f := range tc.Flags {
		var spec traffic.FlagSpec
		if err := json.Unmarshal(v.Value(traffic.Key{Kind: kindFlag, Name: f.Name}), &spec); err != nil {
			return nil, fmt.Errorf("flag %q: %w", f.Name, err)
		}
		if tv.flags[f.Name], err = traffic.NewFlag(f.Name, spec, tv.segments); err != nil {
			return nil, err
		}
	}
	for i, r := range snap.routes {
		if err := tv.compileRoute(snap, r.cfg, v, &tv.routes[i]); err != nil {
			return nil, fmt.Errorf("route %q: %w", r.name, err)
		}
	}
	return tv, nil
}

// compileRoute compiles where one route sends its requests.
func (tv *trafficView) compileRoute(snap *snapshot, rc *config.Route, v traffic.View, rt *routeTraffic) error {
	rt.sticky = tv.sticky
	if rc.Sticky != "" {
		var err error
		if rt.sticky, err = traffic.ParseSource(rc.Sticky); err != nil {
			return fmt.Errorf("sticky: %w", err)
		}
	}
	ups := snap.upstreams
	// A split set at run time applies to a route with one upstream too
	// (a canary of a route that had none); a blue-green route switches.
	split := v.Value(traffic.Key{Kind: kindSplit, Name: rc.Name})
	switch {
	case rc.Active != "":
		var sw switchState
		if err := json.Unmarshal(v.Value(traffic.Key{Kind: kindSwitch, Name: rc.Name}), &sw); err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		if sw.Active != rc.Active && sw.Active != rc.Standby {
			return fmt.Errorf("switch: %q is neither active (%q) nor standby (%q)", sw.Active, rc.Active, rc.Standby)
		}
		rt.single = ups[sw.Active]
	case split != nil:
		var entries []splitEntry
		if err := json.Unmarshal(split, &entries); err != nil {
			return fmt.Errorf("split: %w", err)
		}
		if err := compileSplit(entries, ups, tv.segments, rt); err != nil {
			return fmt.Errorf("split: %w", err)
		}
		return nil
	case rc.Upstream != "":
		rt.single = ups[rc.Upstream]
	default:
		return nil // plugins answer
	}
	if rt.single == nil { // validation rules this out; guard against a nil dereference anyway
		return errors.New("unknown upstream")
	}
	return nil
}
