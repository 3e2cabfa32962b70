package shadow

import "sync/atomic"

// Gate bounds a route's shadow requests in flight. A full gate drops the
// copy (the caller counts it with Recorder.Dropped): shadow traffic never
// queues, never waits, and never holds the client's answer.
type Gate struct {
	max int64
	n   atomic.Int64
}

// NewGate returns a Gate admitting at most limit requests at once; with
// limit 0 or less it admits none.
func NewGate(limit int) *Gate { return &Gate{max: int64(limit)} }

// TryAcquire takes a place if one is free. It never blocks.
func (g *Gate) TryAcquire() bool {
	for {
		n := g.n.Load()
		if n >= g.max {
			return false
		}
		// A CAS rather than Add-then-undo: InFlight never reads above max.
		if g.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back a place taken by TryAcquire. A Release without one is
// ignored rather than letting the count go below zero and the bound drift up.
func (g *Gate) Release() {
	for {
		n := g.n.Load()
		if n <= 0 || g.n.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// InFlight returns the places taken now.
func (g *Gate) InFlight() int { return int(g.n.Load()) }

// Safe reports whether a request method is safe (RFC 9110 section 9.2.1:
// GET, HEAD, OPTIONS, TRACE), so that sending a copy of the request to a
// second upstream changes nothing there. Methods are case-sensitive. Others
// are mirrored only when a route allows unsafe methods.
func Safe(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}
