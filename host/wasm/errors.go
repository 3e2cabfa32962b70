package wasm

import (
	"errors"
	"strconv"
)

// Kind classifies a plugin failure; it is the "kind" label of
// wasmgate_plugin_failures_total and decides the HTTP answer of a
// fail_closed plugin (502, or 503 for exhausted and quarantined).
type Kind uint8

// Failure kinds.
const (
	KindTrap        Kind = iota // the guest trapped, exited, or passed a bad pointer to a host function
	KindTimeout                 // a hook overran its deadline and was interrupted
	KindMemory                  // the guest failed with its memory at the cap
	KindBadReturn               // a hook returned a value the ABI does not define
	KindInit                    // an instance could not be made ready: instantiation, _initialize or on_init failed
	KindExhausted               // every instance was busy for the whole acquire timeout
	KindQuarantined             // the binding failed too often and is backing off
	numKinds
)

var kindNames = [numKinds]string{"trap", "timeout", "memory", "bad_return", "init", "exhausted", "quarantined"}

// String returns the metric label of the kind.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// Sentinels, matched with errors.Is against a *PluginError of the same kind.
var (
	// ErrPoolExhausted: no instance became free within the acquire timeout.
	ErrPoolExhausted = errors.New("plugin instance pool exhausted")
	// ErrQuarantined: the binding is backing off after repeated failures.
	ErrQuarantined = errors.New("plugin quarantined after repeated failures")
	// ErrClosed: the binding or runtime was closed.
	ErrClosed = errors.New("plugin binding closed")
)

// PluginError is a failure of one plugin, for the route's failure policy
// and the log.
type PluginError struct {
	Plugin string
	Kind   Kind
	// Msg says what happened: the hook, the engine's message with the
	// guest stack trace (function names), and what the guest said through
	// set_error.
	Msg string
	Err error // the underlying error, if any
}

// Error implements error.
func (e *PluginError) Error() string {
	if e.Kind == KindInit && e.Err == errRejected {
		return "plugin " + strconv.Quote(e.Plugin) + " rejected its config: " + e.Msg
	}
	if e.Kind == KindInit {
		return "plugin " + strconv.Quote(e.Plugin) + " failed to initialize: " + e.Msg
	}
	return "plugin " + strconv.Quote(e.Plugin) + ": " + e.Kind.String() + ": " + e.Msg
}

// Unwrap returns the underlying error.
func (e *PluginError) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's kind.
func (e *PluginError) Is(target error) bool {
	switch target {
	case ErrPoolExhausted:
		return e.Kind == KindExhausted
	case ErrQuarantined:
		return e.Kind == KindQuarantined
	}
	return false
}

// ConfigRejected reports whether the plugin's on_init refused its config,
// and the guest's reason (its set_error message, else its return value).
// The gateway shows it as a config error at the plugin entry.
func ConfigRejected(err error) (reason string, ok bool) {
	var pe *PluginError
	if errors.As(err, &pe) && pe.Kind == KindInit && pe.Err == errRejected {
		return pe.Msg, true
	}
	return "", false
}

// errRejected marks a non-zero on_init result.
var errRejected = errors.New("on_init rejected the config")
