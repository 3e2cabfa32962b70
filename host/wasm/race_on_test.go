//go:build race

package wasm

// raceEnabled: the race detector slows wazero's compiler ~7 times, so the
// slowest tests sample their corpus.
const raceEnabled = true
