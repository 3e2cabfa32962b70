package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestValidateAndReloadAgree: `config validate` runs the checks serving
// runs. A config it refuses, a running gateway's reload refuses too (422),
// for the same reason, and the gateway goes on serving; nothing in a
// config, however large, takes the process down.
func TestValidateAndReloadAgree(t *testing.T) {
	jwt, err := filepath.Abs(filepath.Join("..", "..", "plugins", "jwt-auth", "jwt-auth.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jwt); err != nil {
		skipOrFail(t, "example plugins not built (bash plugins/build.sh): "+err.Error())
	}
	a, b := startBackend(t, "a"), startBackend(t, "b")
	g := startServe(t, "false", routesTo(a, b, false))
	base := routesTo(a, b, false)
	withPlugin := func(plugin, config string) string {
		return base + "  - {name: p, match: {path_prefix: /p}, upstream: alpha, plugins: [{name: j, config: " + config + "}]}\n" +
			"plugins:\n  - {name: j, module: " + plugin + "}\n"
	}
	bomb := "x-a: &a [1,1,1,1,1,1,1,1,1,1]\n"
	for i, prev := 'b', 'a'; i <= 'h'; i, prev = i+1, i {
		bomb += fmt.Sprintf("x-%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	long := "[" + strings.Repeat("1,", 1_100_000) + "1]"
	for _, tc := range []struct{ name, body, want string }{
		{"missing module", withPlugin("/nonexistent/missing.wasm", "{}"), "missing.wasm"},
		{"jwt secret too short", withPlugin(jwt, `{keys: [{kid: k, secret: short}]}`), "HS256 secret of 5 bytes"},
		{"alias bomb in a plugin config", bomb + withPlugin(jwt, "{keys: *h}"), "too large"},
		{"1.1M-item list, then an unknown upstream", withPlugin(jwt, "{keys: [{kid: k, secret: 0123456789abcdef0123456789abcdef}], big: "+long+"}") +
			"  - {name: late, match: {path_prefix: /late}, upstream: nowhere}\n", "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			writeFile(t, path, g.header+tc.body)
			code, stdout, stderr := runBin(t, testEnv(), "config", "validate", path)
			if code != 1 || strings.Contains(stdout, "ok") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("validate: exit %d, stdout %q, stderr %.500q; want exit 1 naming %q", code, stdout, stderr, tc.want)
			}
			if pos := regexp.MustCompile(regexp.QuoteMeta(path) + `:\d+:\d+: `); !pos.MatchString(stderr) {
				t.Errorf("validate names no FILE:LINE:COL: %.500q", stderr)
			}
			g.setRoutes(t, tc.body)
			r, err := request("POST", "http://"+g.admin+"/config/reload", bearer(testToken), "")
			if err != nil || r.status != 422 || !strings.Contains(r.body, tc.want) {
				t.Fatalf("reload: %v, %d %.500q; want 422 naming %q", err, r.status, r.body, tc.want)
			}
			if r := get(t, g.url("/a/x"), nil); r.status != 200 || r.body != "a /a/x" || g.exited() {
				t.Fatalf("after the rejected reload: %d %q (exited: %v)", r.status, r.body, g.exited())
			}
		})
	}
	g.setRoutes(t, base)
}
