package abi

import (
	"bytes"
	"log/slog"
	"net"
	"testing"
)

func TestFuncImportModule(t *testing.T) {
	if m := (Func{Name: "log"}).ImportModule(); m != ModuleName {
		t.Errorf("no module: %q, want %q", m, ModuleName)
	}
	if m := (Func{Module: "http_handler", Name: "log"}).ImportModule(); m != "http_handler" {
		t.Errorf("http_handler: %q", m)
	}
}

// TestResetKeeps: Call.Reset keeps Ext (the instance's, not the hook's);
// Scope.Reset clears Peer and Proto (the request's) but keeps Flags.
func TestResetKeeps(t *testing.T) {
	ext := &struct{ n int }{1}
	c := &Call{Ext: ext, Scope: &Scope{}}
	c.Reset()
	if c.Ext != ext || c.Scope != nil {
		t.Fatalf("Reset: Ext %v, Scope %v", c.Ext, c.Scope)
	}
	var flags Flags = flagsFunc(func([]byte) (bool, bool) { return true, true })
	s := &Scope{Peer: &net.TCPAddr{Port: 1}, Proto: "HTTP/2.0", Flags: flags, Client: []byte("x")}
	s.Reset()
	if s.Peer != nil || s.Proto != "" || s.Flags == nil || len(s.Client) != 0 {
		t.Fatalf("Scope.Reset: %+v", s)
	}
}

type flagsFunc func([]byte) (bool, bool)

func (f flagsFunc) FlagState(name []byte) (bool, bool) { return f(name) }

// TestLogSplit: LogEnabled follows the plugin's logger, LogMessage logs as
// the log function does.
func TestLogSplit(t *testing.T) {
	var out bytes.Buffer
	c := &Call{Env: &Env{Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))}}
	if c.LogEnabled(slog.LevelInfo) || !c.LogEnabled(slog.LevelError) {
		t.Fatal("LogEnabled does not follow the logger's level")
	}
	c.LogMessage(slog.LevelInfo, []byte("dropped"))
	c.LogMessage(slog.LevelError, []byte("kept"))
	if s := out.String(); bytes.Contains(out.Bytes(), []byte("dropped")) || !bytes.Contains(out.Bytes(), []byte("msg=kept")) {
		t.Fatalf("logged %q", s)
	}
	// With no Env, slog.Default decides; nothing panics.
	(&Call{}).LogEnabled(slog.LevelDebug)
}
