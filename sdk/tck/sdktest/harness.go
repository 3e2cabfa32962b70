package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// SkipOrFail skips a test for a missing prerequisite (a toolchain), except
// in CI (CI=true), where the Makefile installs the toolchains and their
// absence is a failure.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: it must be installed)", why)
	}
	t.Skip(why)
}

// Exec runs name with args in dir, with env added to the process's
// environment, and returns its combined output. The error names the
// command and holds the output. A bound above zero kills the command once
// it has run that long.
func Exec(bound time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if bound > 0 {
		timer := time.NewTimer(bound)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.Bytes())
		}
		return out.String(), nil
	case <-timeout:
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s %s: still running after %v\n%s", name, strings.Join(args, " "), bound, out.Bytes())
	}
}

// Run runs a build command in dir (env added to the process's) and returns
// its combined output; it fails the test with that output if the command
// fails.
func Run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := Exec(0, dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// AdminToken is the admin API's token in Config.
const AdminToken = "sdk-test-admin-token-0123456789abcdef"

// Config returns a full gateway config: loopback listeners, the admin API
// (AdminToken), the access log on stdout, no compilation cache, and rest
// (plugins, upstreams, routes).
func Config(rest string) string {
	return `
listen: {address: 127.0.0.1:0, shutdown_timeout: 5s}
admin: {address: 127.0.0.1:0, token: ` + AdminToken + `, watch_config: false}
log: {access_log: stdout}
plugin_runtime: {cache_dir: "off"}
` + rest
}

// Gateway is a running wasmgate (host/server) with its logs.
type Gateway struct {
	Server *server.Server
	Logs   *testkit.SyncBuffer // the process log, JSON lines
	Access *testkit.SyncBuffer // the access log ("stdout"), JSON lines
	token  string              // the admin API's
}

// Options are a gateway's settings besides its config file.
type Options struct {
	// LogLevel is the lowest level the process log keeps (default Info).
	LogLevel slog.Level
	// AdminToken, when set, wins over the config's admin token (as
	// WASMGATE_ADMIN_TOKEN does).
	AdminToken string
}

// NewGateway writes config (a whole config, as Config returns) to a file,
// builds a gateway on it and starts it; it shuts down when the test ends.
// It returns server.New's error: a config the gateway or a plugin's
// on_init refused.
func NewGateway(t testing.TB, config string) (*Gateway, error) {
	t.Helper()
	return NewGatewayWith(t, config, Options{})
}

// NewGatewayWith is NewGateway with opts.
func NewGatewayWith(t testing.TB, config string, opts Options) (*Gateway, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Logs: &testkit.SyncBuffer{}, Access: &testkit.SyncBuffer{}}
	s, err := server.New(server.Options{
		ConfigPath: path,
		Log:        slog.New(slog.NewJSONHandler(g.Logs, &slog.HandlerOptions{Level: opts.LogLevel})),
		Stdout:     g.Access,
		AdminToken: opts.AdminToken,
	})
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	g.Server = s
	g.token, _ = s.AdminToken()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return g, nil
}

// StartGateway is NewGateway that fails the test when the config is
// refused.
func StartGateway(t testing.TB, config string) *Gateway {
	t.Helper()
	return StartGatewayWith(t, config, Options{})
}

// StartGatewayWith is StartGateway with opts.
func StartGatewayWith(t testing.TB, config string, opts Options) *Gateway {
	t.Helper()
	g, err := NewGatewayWith(t, config, opts)
	if err != nil {
		t.Fatalf("the gateway refused the config: %v\n%s", err, config)
	}
	return g
}

// URL is path on the gateway's proxy listener.
func (g *Gateway) URL(path string) string { return "http://" + g.Server.ProxyAddr() + path }

// Metrics returns the Prometheus text of the admin API.
func (g *Gateway) Metrics(t testing.TB) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+g.Server.AdminAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// LogLines returns the process log, one decoded JSON object per line.
func (g *Gateway) LogLines() []map[string]any { return jsonLines(g.Logs.String()) }

// AccessLines returns the access log, one decoded JSON object per line.
func (g *Gateway) AccessLines() []map[string]any { return jsonLines(g.Access.String()) }

// Logged reports whether a line of the process log holds text and is
// about the plugin named plugin.
func (g *Gateway) Logged(plugin, text string) bool {
	for _, l := range strings.Split(g.Logs.String(), "\n") {
		if strings.Contains(l, text) && strings.Contains(l, `"plugin":"`+plugin+`"`) {
			return true
		}
	}
	return false
}

// jsonLines decodes the JSON objects of s, one a line, skipping the
// lines that are not.
func jsonLines(s string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
