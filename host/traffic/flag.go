package traffic

import "fmt"

// FlagSpec is a feature flag's state, as the config file and the admin API
// write it: {"enabled": true, "percent": 20, "segment": "beta-testers"}.
type FlagSpec struct {
	Enabled bool `json:"enabled"`
	// Percent is the share of sticky hashes the flag is on for, 0..100;
	// nil means 100.
	Percent *int `json:"percent,omitempty"`
	// Segment, when set, limits the flag to the segment's members.
	Segment string `json:"segment,omitempty"`
}

// Flag is a compiled FlagSpec. It is immutable and safe for concurrent use.
type Flag struct {
	name    string
	enabled bool
	percent int
	segment *Segment // nil: everyone
	salt    uint64   // of the flag's percentage cohort
}

// NewFlag validates spec and resolves its segment in segs, so On needs no
// lookup.
func NewFlag(name string, spec FlagSpec, segs Segments) (*Flag, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("flag: %w", err)
	}
	f := &Flag{name: name, enabled: spec.Enabled, percent: 100, salt: Salt("flag/" + name)}
	if p := spec.Percent; p != nil {
		if *p < 0 || *p > 100 {
			return nil, fmt.Errorf("flag %q: percent %d out of range 0..100", name, *p)
		}
		f.percent = *p
	}
	if spec.Segment != "" {
		if f.segment = segs[spec.Segment]; f.segment == nil {
			return nil, fmt.Errorf("flag %q: unknown segment %q", name, spec.Segment)
		}
	}
	return f, nil
}

// Name returns the flag's name.
func (f *Flag) Name() string { return f.name }

// On reports whether the flag is on for the request: enabled, the request in
// the segment (if any), and its sticky hash InPercent. A request without a
// sticky key gets the request's random hash, so it is on with probability
// percent but may differ from one request to the next. Each flag's
// percentage is its own cohort (Salt). It does not allocate.
func (f *Flag) On(r Request) bool {
	if !f.enabled || f.percent == 0 {
		return false
	}
	if f.segment != nil && !f.segment.Contains(r) {
		return false
	}
	if f.percent >= 100 {
		return true
	}
	h, _ := r.StickyHash() // without a key: random, once per request
	return InPercent(Salted(h, f.salt), f.percent)
}
