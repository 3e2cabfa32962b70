package ctest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/server"
	"github.com/wasmgate/wasmgate/host/testkit"
)

// The harness these tests share with sdk/rust's (each package keeps its own
// copy, a few lines, rather than a package of test helpers for two users):
// skipping for a missing toolchain, running a build, and a real gateway
// (host/server) on a config file.

// skipOrFail skips a test for a missing prerequisite, except in CI
// (CI=true), where the Makefile installs the toolchains and their absence
// is a failure.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: it must be installed)", why)
	}
	t.Skip(why)
}

// run runs a build command in dir and fails the test with its output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// adminToken is the admin API's token in the tests' configs.
const adminToken = "sdk-test-admin-token-0123456789abcdef"

// gateway is a running wasmgate with its logs.
type gateway struct {
	s      *server.Server
	logs   *testkit.SyncBuffer // the process log, JSON lines
	access *testkit.SyncBuffer // the access log, JSON lines
}

// gatewayConfig returns a full config: loopback listeners, the admin API,
// no compilation cache, and rest (plugins, upstreams, routes).
func gatewayConfig(rest string) string {
	return `
listen: {address: 127.0.0.1:0, shutdown_timeout: 5s}
admin: {address: 127.0.0.1:0, token: ` + adminToken + `, watch_config: false}
log: {access_log: stdout}
plugin_runtime: {cache_dir: "off"}
` + rest
}

// newGateway builds a gateway on config and starts it, or returns New's
// error (a config the gateway or a plugin's on_init refused).
func newGateway(t *testing.T, config string) (*gateway, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{logs: &testkit.SyncBuffer{}, access: &testkit.SyncBuffer{}}
	s, err := server.New(server.Options{ConfigPath: path, Log: slog.New(slog.NewJSONHandler(g.logs, nil)), Stdout: g.access})
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	g.s = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return g, nil
}

// startGateway is newGateway that fails the test when the config is refused.
func startGateway(t *testing.T, config string) *gateway {
	t.Helper()
	g, err := newGateway(t, config)
	if err != nil {
		t.Fatalf("the gateway refused the config: %v\n%s", err, config)
	}
	return g
}

// url is path on the gateway's proxy listener.
func (g *gateway) url(path string) string { return "http://" + g.s.ProxyAddr() + path }

// metrics returns the Prometheus text of the admin API.
func (g *gateway) metrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+g.s.AdminAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// accessLines returns the access log, one decoded JSON object per line.
func (g *gateway) accessLines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(g.access.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
