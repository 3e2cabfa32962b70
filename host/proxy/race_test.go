//go:build race

package proxy

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of code that pools (fasthttp's client) mean nothing.
const raceEnabled = true
