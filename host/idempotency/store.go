// Package idempotency stores the first answer to a request carrying an
// idempotency key (IETF draft "The Idempotency-Key HTTP Header Field") so
// that a repeat is answered from the store instead of reaching the
// upstream again.
//
// A key goes through two states. A request that finds no record claims
// the key: it gets a lease and a fencing token, sends the request, then
// completes the key with the response (stored for the TTL) or releases it
// (a failure the client may retry). While the key is claimed, a repeat
// with the same request is in flight (it waits for the first, or is
// refused with 409); a request with the same key and a different body is
// a mismatch (422); once completed, a repeat is replayed.
//
// The lease bounds how long a claim lasts: a gateway that stalls or dies
// holding a key loses it when the lease expires, and another may claim it
// with a higher token. Complete is fenced: it stores nothing for a token
// that is no longer the key's, so a stalled holder cannot overwrite the
// answer of its successor. The gateway forwards the token upstream
// (Idempotency-Fence) for upstreams that want to refuse a stale sender;
// and it checks its lease before sending, so it never sends on an expired
// claim. What remains is the window between that check and the upstream
// acting on the request: a lease must outlive the upstream call, which is
// why the gateway derives it from the route's timeouts.
//
// Two stores: Memory, per gateway process, and Redis, shared by every
// gateway using the same Redis (the claim is atomic there, so two
// gateways never both send one key).
package idempotency

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// State is the outcome of a claim.
type State uint8

const (
	// Claimed: the key is the caller's, with a lease and a fencing token.
	// It must send the request, then Complete or Release the key.
	Claimed State = iota
	// Replay: the key completed; Claim.Response is its answer.
	Replay
	// InFlight: another request holds the key.
	InFlight
	// Mismatch: the key was claimed by a different request.
	Mismatch
)

func (s State) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Replay:
		return "replay"
	case InFlight:
		return "in flight"
	case Mismatch:
		return "mismatch"
	}
	return "unknown"
}

// Claim is the answer of Store.Claim.
type Claim struct {
	State State
	// Token is the fencing token of a Claimed key: it grows with every
	// claim of any key of the store.
	Token uint64
	// Response is the stored answer of a Replay.
	Response *Response
}

// Fingerprint identifies a request: a key reused with another fingerprint
// is a mismatch.
type Fingerprint [sha256.Size]byte

// NewFingerprint digests what makes two requests the same: the method,
// the request target (path and query) and the body.
func NewFingerprint(method, target, body []byte) Fingerprint {
	h := sha256.New()
	var n [4]byte
	for _, part := range [][]byte{method, target, body} {
		n[0], n[1], n[2], n[3] = byte(len(part)>>24), byte(len(part)>>16), byte(len(part)>>8), byte(len(part))
		h.Write(n[:])
		h.Write(part)
	}
	var fp Fingerprint
	h.Sum(fp[:0])
	return fp
}

// Store keeps idempotency records. Implementations are safe for
// concurrent use.
type Store interface {
	// Claim claims key for the request fp for lease, or says why not.
	Claim(ctx context.Context, key string, fp Fingerprint, lease time.Duration) (Claim, error)
	// Complete stores resp as the answer of key for ttl, if token still
	// holds the key; else it returns ErrLeaseLost and stores nothing.
	Complete(ctx context.Context, key string, token uint64, resp *Response, ttl time.Duration) error
	// Release gives up a claim without an answer (the request failed and
	// may be retried), if token still holds the key.
	Release(ctx context.Context, key string, token uint64) error
	// Wait returns when key may have changed state (completed, released,
	// its lease expired), or when ctx is done.
	Wait(ctx context.Context, key string) error
	// Close releases the store's resources.
	Close() error
}

// ErrLeaseLost is Complete's error when the claim expired and the key
// went to another request (or was released).
var ErrLeaseLost = errors.New("idempotency key: lease lost")

// ErrUnreadable is Claim's error when the key completed but its stored
// answer cannot be decoded (another version's encoding, a damaged record).
var ErrUnreadable = errors.New("idempotency key: stored answer unreadable")

// ErrFull is Claim's error when a Memory store has no room for a new key.
var ErrFull = errors.New("idempotency store full")
