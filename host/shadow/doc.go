// Package shadow is the pure core of shadow traffic: what the gateway needs
// to mirror a route's requests to a candidate upstream and compare the two
// answers, without doing any I/O itself.
//
//   - Comparer (compare.go) compares the primary's and the candidate's
//     responses by a Spec: status, listed header fields, and the body as
//     JSON (key order, number spelling and ignored paths do not count;
//     jsondiff.go, path.go) or as bytes. Differences are paths with both
//     values, readable in the admin API.
//   - Recorder (recorder.go) counts a route's shadow requests and keeps its
//     last RecentMismatches mismatching pairs (differences only, no bodies).
//   - Gate (gate.go) bounds a route's shadow requests in flight; Safe says
//     which methods may be mirrored without an explicit opt-in.
//
// The package never sees the client's response: the gateway answers the
// client from the primary as if there were no shadow, captures what the
// Spec compares (Comparer.Capture), and sends the copy to the candidate
// after the primary answered or beside it, on its own goroutine, if the
// Gate admits it; else the copy is dropped and counted. Sending, timeouts
// and metrics are the gateway's.
//
// Upstream bytes are arbitrary, so a Diff is bounded in every way: at most
// MaxDifferences differences (plus one marker), bodies over MaxBodySize
// compared by length and SHA-256, JSON compared MaxDepth levels deep (deeper
// byte for byte, validated without recursion), values cut at MaxValueSize.
// It never panics on any input.
//
// Ignore paths hold [ ] and may start with *: in YAML, quote them
// ("items[*].id").
package shadow
