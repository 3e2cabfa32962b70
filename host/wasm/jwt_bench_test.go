package wasm

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
)

// BenchmarkJWTAuth measures plugins/jwt-auth (a Go wasip1 module) on one
// held instance: one on_request with a valid token, which the plugin lets
// through. RS256/host verifies the signature with the crypto_verify host
// function, RS256/guest in the module's own wasm code; HS256 (always in the
// guest) is the plugin's cost without a public-key operation. Build the
// module first: bash plugins/build.sh jwt-auth.
func BenchmarkJWTAuth(b *testing.B) {
	dir := filepath.Join("..", "..", "plugins", "jwt-auth")
	wasm, err := os.ReadFile(filepath.Join(dir, "jwt-auth.wasm"))
	if err != nil {
		b.Skipf("%v: run bash plugins/build.sh jwt-auth first", err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(dir, "testdata", "rsa2048.pub.pem"))
	if err != nil {
		b.Fatal(err)
	}
	privPEM, err := os.ReadFile(filepath.Join(dir, "testdata", "rsa2048.key.pem"))
	if err != nil {
		b.Fatal(err)
	}
	block, _ := pem.Decode(privPEM)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	priv := k.(*rsa.PrivateKey)
	const secret = "0123456789abcdef0123456789abcdef"

	discard := slog.New(slog.DiscardHandler)
	r, err := NewRuntime(Options{Log: discard})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(func() { _ = r.Close(ctx) })
	m, err := r.Load(ctx, "jwt-auth", wasm)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Release(ctx) })

	pub, _ := json.Marshal(string(pubPEM))
	exp := time.Now().Add(time.Hour).Unix() // the plugin reads the host's clock
	for _, tc := range []struct{ name, alg, verify string }{
		{"RS256/host", "RS256", "host"},
		{"RS256/guest", "RS256", "guest"},
		{"HS256", "HS256", "host"},
	} {
		cfg := `{"keys":[{"public_key":` + string(pub) + `},{"secret":"` + secret + `"}],"verify":"` + tc.verify + `"}`
		env := &abi.Env{Plugin: "jwt-auth", Route: "bench", Config: []byte(cfg), Log: discard}
		bd, err := m.Bind(ctx, env, BindingConfig{CallTimeout: time.Second})
		if err != nil {
			b.Fatalf("%s: bind: %v", tc.name, err)
		}
		token := signJWT(b, tc.alg, priv, secret, exp)
		b.Run(tc.name, func(b *testing.B) {
			inst, err := bd.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer bd.Release(inst, false)
			req, resp := new(fasthttp.Request), new(fasthttp.Response)
			req.SetRequestURI("http://example.test/")
			req.Header.Set("Authorization", "Bearer "+token) // the plugin leaves it in place
			scope := &abi.Scope{Client: []byte("127.0.0.1")}
			b.ReportAllocs()
			for b.Loop() {
				action, err := inst.OnRequest(req, resp, scope)
				if err != nil || action != abi.Continue {
					b.Fatalf("on_request = %d, %v; response %d %s", action, err, resp.StatusCode(), resp.Body())
				}
			}
		})
		_ = bd.Close(ctx)
	}
}

// signJWT makes a compact token {"alg":alg}.{"sub":"42","exp":exp}.
func signJWT(b *testing.B, alg string, priv *rsa.PrivateKey, secret string, exp int64) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"`+alg+`"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"42","exp":`+strconv.FormatInt(exp, 10)+`}`))
	var sig []byte
	if alg == "HS256" {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(signed))
		sig = m.Sum(nil)
	} else {
		d := sha256.Sum256([]byte(signed))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}
	return signed + "." + enc.EncodeToString(sig)
}
