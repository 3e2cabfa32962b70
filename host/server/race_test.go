//go:build race

package server

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of code that pools (the request state, fasthttp) mean nothing.
const raceEnabled = true
