package server

import "testing"

// TestMemorySettler: calls in a burst share one pending settle, and stop
// (at shutdown) cancels it and refuses new ones.
func TestMemorySettler(t *testing.T) {
	var m memorySettler
	m.soon()
	first := m.timer
	if first == nil {
		t.Fatal("no settle pending after soon")
	}
	m.soon()
	if m.timer != first {
		t.Error("a second call made a second timer instead of pushing the first back")
	}
	m.stop()
	if first.Stop() {
		t.Error("the settle is still pending after stop")
	}
	var stopped memorySettler
	stopped.stop()
	stopped.soon()
	if stopped.timer != nil {
		t.Error("soon after stop armed a settle")
	}
}
