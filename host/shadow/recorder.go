package shadow

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RecentMismatches is how many mismatching pairs a Recorder keeps.
const RecentMismatches = 20

// maxTargetSize bounds the request target kept with a mismatch.
const maxTargetSize = 1024

// Counts are a route's shadow counters. Sent = Matches + Mismatches +
// Errors + the requests still in flight; Dropped and Skipped were never sent.
type Counts struct {
	Sent       uint64 `json:"sent"`       // copies sent to the candidate
	Matches    uint64 `json:"matches"`    // answered, no difference
	Mismatches uint64 `json:"mismatches"` // answered, with differences
	Dropped    uint64 `json:"dropped"`    // not sent: the in-flight bound was reached
	Errors     uint64 `json:"errors"`     // no answer from the candidate: timeout, refused, reset
	Skipped    uint64 `json:"skipped"`    // not sent: an unsafe method, not allowed to mirror
}

// Mismatch is one pair whose answers differed: the request and the
// differences, never the bodies.
type Mismatch struct {
	Time            time.Time    `json:"time"`
	Method          string       `json:"method"`
	Path            string       `json:"path"` // with the query
	PrimaryStatus   int          `json:"primary_status"`
	CandidateStatus int          `json:"candidate_status"`
	Differences     []Difference `json:"differences"`
}

// Report is a route's shadow state, as GET /routes/{name}/shadow shows it.
type Report struct {
	Counts
	LastError string `json:"last_error,omitempty"` // the last error talking to the candidate
	// Recent holds the last RecentMismatches mismatches, newest first.
	Recent []Mismatch `json:"recent_mismatches"`
}

// Recorder counts a route's shadow traffic and keeps its last mismatches.
// It is safe for concurrent use; counting takes no lock, only keeping a
// mismatch does. The zero value is ready.
type Recorder struct {
	sent, matches, mismatches, dropped, errors, skipped atomic.Uint64
	lastErr                                             atomic.Pointer[string]

	mu   sync.Mutex
	ring [RecentMismatches]Mismatch
	next int // where the next mismatch goes
	n    int // how many the ring holds
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return new(Recorder) }

// Sent counts a copy sent to the candidate.
func (r *Recorder) Sent() { r.sent.Add(1) }

// Dropped counts a copy not sent because the Gate was full.
func (r *Recorder) Dropped() { r.dropped.Add(1) }

// Skipped counts a request not mirrored because its method is unsafe.
func (r *Recorder) Skipped() { r.skipped.Add(1) }

// Failed counts a copy that got no answer, and keeps err's text.
func (r *Recorder) Failed(err error) {
	r.errors.Add(1)
	if err != nil {
		s := cutText(err.Error(), 4*MaxValueSize)
		r.lastErr.Store(&s)
	}
}

// Compared counts a pair the candidate answered, and keeps it when diffs is
// not empty. method and target (the path with its query) are copied; diffs
// too, so the caller may reuse its slice.
func (r *Recorder) Compared(method, target []byte, primaryStatus, candidateStatus int, diffs []Difference) {
	if len(diffs) == 0 {
		r.matches.Add(1)
		return
	}
	r.mismatches.Add(1)
	m := Mismatch{
		Time:            time.Now(),
		Method:          string(method),
		Path:            cutText(string(cutUTF8(target, maxTargetSize+1)), maxTargetSize),
		PrimaryStatus:   primaryStatus,
		CandidateStatus: candidateStatus,
		Differences:     slices.Clone(diffs),
	}
	r.mu.Lock()
	r.ring[r.next] = m
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// Counts reads the counters, one by one (lock-free, so not one instant).
func (r *Recorder) Counts() Counts {
	return Counts{
		Sent:       r.sent.Load(),
		Matches:    r.matches.Load(),
		Mismatches: r.mismatches.Load(),
		Dropped:    r.dropped.Load(),
		Errors:     r.errors.Load(),
		Skipped:    r.skipped.Load(),
	}
}

// Snapshot returns the counters and a copy of the kept mismatches, newest first.
func (r *Recorder) Snapshot() Report {
	rep := Report{Counts: r.Counts(), Recent: []Mismatch{}}
	if s := r.lastErr.Load(); s != nil {
		rep.LastError = *s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := 1; k <= r.n; k++ {
		m := r.ring[(r.next-k+len(r.ring))%len(r.ring)]
		m.Differences = slices.Clone(m.Differences)
		rep.Recent = append(rep.Recent, m)
	}
	return rep
}
