package abi

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
)

// testKeys are generated once per test binary: RSA key generation takes a
// while, and every test here only needs some key of each kind.
type testKeys struct {
	rsa, rsa2, rsa1024 *rsa.PrivateKey
	ec, ec2, p384      *ecdsa.PrivateKey
	ed, ed2            ed25519.PrivateKey
}

var keys = sync.OnceValue(func() *testKeys {
	k := &testKeys{}
	var err error
	must := func(e error) {
		if e != nil {
			panic(e)
		}
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.ed2, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// spki is the DER SubjectPublicKeyInfo of pub.
func spki(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// jwsSign signs msg as JWS alg does (RFC 7518 section 3; RFC 8037).
func jwsSign(t testing.TB, alg int32, priv crypto.Signer, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	var sig []byte
	var err error
	switch alg {
	case AlgRS256:
		sig, err = rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, d[:])
	case AlgPS256:
		sig, err = rsa.SignPSS(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, d[:],
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case AlgES256:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, priv.(*ecdsa.PrivateKey), d[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case AlgEdDSA:
		sig = ed25519.Sign(priv.(ed25519.PrivateKey), msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i%len(c)] ^= 0x01
	return c
}

// verifyCase is one crypto_verify call and its expected result.
type verifyCase struct {
	name          string
	alg           int32
	key, msg, sig []byte
	want          int32
}

// verifyCases is the table shared by the host function test and the
// in-memory checks: for every algorithm a valid signature, a tampered
// message, a tampered signature, the wrong key, unusable keys and
// malformed signatures.
func verifyCases(t testing.TB) []verifyCase {
	k := keys()
	msg := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiJ9")
	other := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MyJ9")
	garbage := []byte("\x30\x82\x01\x22 not a key")
	var cases []verifyCase
	type algKeys struct {
		name        string
		alg         int32
		priv        crypto.Signer
		key, wrong  []byte
		foreignKeys [][]byte // keys of another kind: unusable with alg
	}
	rsaKey, rsa2Key := spki(t, &k.rsa.PublicKey), spki(t, &k.rsa2.PublicKey)
	ecKey, ec2Key := spki(t, &k.ec.PublicKey), spki(t, &k.ec2.PublicKey)
	edKey, ed2Key := spki(t, k.ed.Public()), spki(t, k.ed2.Public())
	for _, a := range []algKeys{
		{"RS256", AlgRS256, k.rsa, rsaKey, rsa2Key, [][]byte{ecKey, edKey}},
		{"PS256", AlgPS256, k.rsa, rsaKey, rsa2Key, [][]byte{ecKey, edKey}},
		{"ES256", AlgES256, k.ec, ecKey, ec2Key, [][]byte{rsaKey, edKey}},
		{"EdDSA", AlgEdDSA, k.ed, edKey, ed2Key, [][]byte{rsaKey, ecKey}},
	} {
		sig := jwsSign(t, a.alg, a.priv, msg)
		cases = append(cases,
			verifyCase{a.name + " valid", a.alg, a.key, msg, sig, 1},
			verifyCase{a.name + " tampered message", a.alg, a.key, other, sig, 0},
			verifyCase{a.name + " tampered message end", a.alg, a.key, flip(msg, len(msg)-1), sig, 0},
			verifyCase{a.name + " tampered signature start", a.alg, a.key, msg, flip(sig, 0), 0},
			verifyCase{a.name + " tampered signature end", a.alg, a.key, msg, flip(sig, len(sig)-1), 0},
			verifyCase{a.name + " wrong key", a.alg, a.wrong, msg, sig, 0},
			verifyCase{a.name + " short signature", a.alg, a.key, msg, sig[:len(sig)-1], 0},
			verifyCase{a.name + " long signature", a.alg, a.key, msg, append(slices.Clone(sig), 0), 0},
			verifyCase{a.name + " empty signature checks the key", a.alg, a.key, nil, nil, 0},
			verifyCase{a.name + " empty message", a.alg, a.key, nil, sig, 0},
			verifyCase{a.name + " bad key", a.alg, garbage, msg, sig, ErrBadArgument},
			verifyCase{a.name + " empty key", a.alg, nil, msg, sig, ErrBadArgument},
			verifyCase{a.name + " truncated key", a.alg, a.key[:len(a.key)-1], msg, sig, ErrBadArgument},
			verifyCase{a.name + " key with trailing data", a.alg, append(slices.Clone(a.key), 0), msg, sig, ErrBadArgument},
			verifyCase{a.name + " empty signature, bad key", a.alg, garbage, nil, nil, ErrBadArgument},
		)
		for i, fk := range a.foreignKeys {
			cases = append(cases, verifyCase{fmt.Sprintf("%s key of another kind %d", a.name, i), a.alg, fk, msg, sig, ErrBadArgument})
		}
	}

	// RSA specifics: the PKCS#1 form, weak keys, PSS salt length, and a
	// signature of one scheme checked as the other.
	rs := jwsSign(t, AlgRS256, k.rsa, msg)
	ps := jwsSign(t, AlgPS256, k.rsa, msg)
	d := sha256.Sum256(msg)
	psAuto, err := rsa.SignPSS(rand.Reader, k.rsa, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)
	weak := spki(t, &k.rsa1024.PublicKey)
	weakSig := jwsSign(t, AlgRS256, k.rsa1024, msg)
	e1 := x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: k.rsa.N, E: 1})
	e65536 := x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: k.rsa.N, E: 65536})
	cases = append(cases,
		verifyCase{"RS256 PKCS#1 key", AlgRS256, pkcs1, msg, rs, 1},
		verifyCase{"PS256 PKCS#1 key", AlgPS256, pkcs1, msg, ps, 1},
		verifyCase{"RS256 1024-bit key", AlgRS256, weak, msg, weakSig, ErrBadArgument},
		verifyCase{"RS256 exponent 1", AlgRS256, e1, msg, rs, ErrBadArgument},
		verifyCase{"RS256 even exponent", AlgRS256, e65536, msg, rs, ErrBadArgument},
		verifyCase{"PS256 salt not the hash size", AlgPS256, rsaKey, msg, psAuto, 0},
		verifyCase{"RS256 signature checked as PS256", AlgPS256, rsaKey, msg, rs, 0},
		verifyCase{"PS256 signature checked as RS256", AlgRS256, rsaKey, msg, ps, 0},
	)

	// ECDSA specifics: another curve, the ASN.1 form JWS does not use,
	// r or s out of range.
	es := jwsSign(t, AlgES256, k.ec, msg)
	asn1Sig, err := ecdsa.SignASN1(rand.Reader, k.ec, d[:])
	if err != nil {
		t.Fatal(err)
	}
	zeroR := append(make([]byte, 32), es[32:]...)
	bigS := append(slices.Clone(es[:32]), bytes.Repeat([]byte{0xFF}, 32)...)
	cases = append(cases,
		verifyCase{"ES256 P-384 key", AlgES256, spki(t, &k.p384.PublicKey), msg, es, ErrBadArgument},
		verifyCase{"ES256 ASN.1 signature", AlgES256, ecKey, msg, asn1Sig, 0},
		verifyCase{"ES256 r zero", AlgES256, ecKey, msg, zeroR, 0},
		verifyCase{"ES256 s over the order", AlgES256, ecKey, msg, bigS, 0},
		verifyCase{"ES256 all zero", AlgES256, ecKey, msg, make([]byte, 64), 0},
	)

	// Algorithms: unknown values, whatever the key.
	for _, alg := range []int32{0, 5, -1, -2, 1 << 30} {
		cases = append(cases, verifyCase{fmt.Sprintf("unknown alg %d", alg), alg, rsaKey, msg, rs, ErrBadArgument})
	}
	return cases
}

func TestCryptoVerify(t *testing.T) {
	for _, phase := range []Phase{PhaseInit, PhaseRequest, PhaseResponse} {
		for _, tc := range verifyCases(t) {
			h := newHarness(t, phase)
			// Large enough for an RSA key, message and signature.
			h.mem = make(testMem, 1<<13)
			h.c.Mem = h.mem
			kp, kn := h.put(string(tc.key))
			mp, mn := h.put(string(tc.msg))
			sp, sn := h.put(string(tc.sig))
			before := slices.Clone(h.mem)
			if got := h.call32("crypto_verify", i32arg(tc.alg), kp, kn, mp, mn, sp, sn); got != tc.want {
				t.Errorf("phase %d: %s = %d, want %d", phase, tc.name, got, tc.want)
			}
			if !bytes.Equal(before, h.mem) {
				t.Errorf("%s: crypto_verify wrote to guest memory", tc.name)
			}
		}
	}
}

func TestCryptoVerifyLimits(t *testing.T) {
	k := keys()
	key := spki(t, k.ed.Public())
	msg := make([]byte, MaxVerifyMessage)
	sig := ed25519.Sign(k.ed, msg)
	if got := verifySignature(AlgEdDSA, key, msg, sig); got != 1 {
		t.Fatalf("message of MaxVerifyMessage bytes: %d, want 1", got)
	}
	if got := verifySignature(AlgEdDSA, key, append(msg, 0), sig); got != ErrTooLarge {
		t.Fatalf("message over MaxVerifyMessage: %d, want TOO_LARGE", got)
	}
	// A key over MaxVerifyKey is refused before it is hashed or parsed,
	// even with the valid key as its prefix.
	long := append(slices.Clone(key), make([]byte, MaxVerifyKey)...)
	if got := verifySignature(AlgEdDSA, long, msg[:1], sig); got != ErrBadArgument {
		t.Fatalf("key over MaxVerifyKey: %d", got)
	}
	// An RSA key over MaxRSABits is refused. Its modulus need not come
	// from a real key: only the size is checked before use.
	n := new(big.Int).Lsh(big.NewInt(1), MaxRSABits)
	n.Add(n, big.NewInt(1))
	huge := x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: n, E: 65537})
	if got := verifySignature(AlgRS256, huge, nil, nil); got != ErrBadArgument {
		t.Fatalf("%d-bit RSA key: %d", n.BitLen(), got)
	}
	n.Rsh(n, 1)
	n.Add(n, big.NewInt(1)) // MaxRSABits bits
	ok := x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: n, E: 65537})
	if got := verifySignature(AlgRS256, ok, nil, nil); got != 0 {
		t.Fatalf("%d-bit RSA key: %d, want 0 (usable)", n.BitLen(), got)
	}
}

// TestCryptoVerifyOutOfBounds: every pointer pair out of bounds traps
// before anything is checked, whatever the algorithm.
func TestCryptoVerifyOutOfBounds(t *testing.T) {
	bad := [][2]uint64{{memSize - 4, 8}, {1 << 31, 16}, {16, i32arg(-1)}, {0xFFFFFFF0, 0x20}, {0xFFFFFFFF, 1}}
	for _, alg := range []int32{AlgRS256, AlgEdDSA, 0, 99} {
		for pair := range 3 {
			for _, b := range bad {
				h := newHarness(t, PhaseRequest)
				p, n := h.put("x-ok")
				args := []uint64{i32arg(alg), p, n, p, n, p, n}
				args[1+2*pair], args[2+2*pair] = b[0], b[1]
				mustPanicOOB(t, "crypto_verify", func() { h.call("crypto_verify", args...) })
			}
		}
	}
	// A zero-length range never traps, whatever its pointer.
	h := newHarness(t, PhaseRequest)
	if got := h.call32("crypto_verify", AlgRS256, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0); got != ErrBadArgument {
		t.Fatalf("empty ranges: %d, want BAD_ARGUMENT (no key)", got)
	}
}

func TestAppendECDSASig(t *testing.T) {
	inputs := [][]byte{
		make([]byte, 64),
		bytes.Repeat([]byte{0xFF}, 64),
		append(append(make([]byte, 31), 0x80), append(make([]byte, 31), 0x01)...),
		append([]byte{0, 0x80}, make([]byte, 62)...),
		append([]byte{0, 0x7F}, bytes.Repeat([]byte{0x80}, 62)...),
	}
	for range 64 {
		b := make([]byte, 64)
		_, _ = rand.Read(b)
		inputs = append(inputs, b)
	}
	for _, rs := range inputs {
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(rs[:32]), new(big.Int).SetBytes(rs[32:])})
		if err != nil {
			t.Fatal(err)
		}
		var buf [72]byte
		if got := appendECDSASig(buf[:0], rs); !bytes.Equal(got, want) {
			t.Fatalf("r||s %x:\n got  %x\n want %x", rs, got, want)
		}
	}
}

// TestKeyCacheLRU: a hit refreshes a key, a miss past the bound evicts the
// least recently used one, and unusable keys are never cached.
func TestKeyCacheLRU(t *testing.T) {
	kc := newKeyCache(2)
	var ders [3][]byte
	for i := range ders {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ders[i] = spki(t, pub)
	}
	cached := func(der []byte) bool {
		_, ok := kc.m[sha256.Sum256(der)]
		return ok
	}
	if kc.get(ders[0]) == nil || kc.get(ders[1]) == nil {
		t.Fatal("usable key not parsed")
	}
	if p0 := kc.get(ders[0]); !bytes.Equal(p0.(ed25519.PublicKey), ders[0][len(ders[0])-32:]) {
		t.Fatal("hit answered another key")
	}
	kc.get(ders[2]) // evicts ders[1], the least recently used
	if !cached(ders[0]) || cached(ders[1]) || !cached(ders[2]) || kc.len() != 2 {
		t.Fatalf("after eviction: %v %v %v, %d keys", cached(ders[0]), cached(ders[1]), cached(ders[2]), kc.len())
	}
	if kc.get([]byte("garbage")) != nil || kc.len() != 2 || !cached(ders[0]) || !cached(ders[2]) {
		t.Fatal("garbage key cached or evicted a good one")
	}
	// The list and the map agree.
	n := 0
	for e := kc.head.next; e != &kc.head; e = e.next {
		if kc.m[e.sum] != e {
			t.Fatal("list entry not in the map")
		}
		n++
	}
	if n != kc.len() {
		t.Fatalf("list has %d entries, map %d", n, kc.len())
	}
}

// TestKeyCacheConcurrent: instances verifying at once with more keys than
// the cache holds (run with -race).
func TestKeyCacheConcurrent(t *testing.T) {
	saved := publicKeys
	publicKeys = newKeyCache(3)
	t.Cleanup(func() { publicKeys = saved })
	type signed struct{ key, sig []byte }
	msg := []byte("payload")
	var all []signed
	for range 5 {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, signed{spki(t, pub), ed25519.Sign(priv, msg)})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				s := all[(g+i)%len(all)]
				if got := verifySignature(AlgEdDSA, s.key, msg, s.sig); got != 1 {
					errs <- fmt.Sprintf("goroutine %d call %d: %d", g, i, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := publicKeys.len(); n > 3 {
		t.Fatalf("cache holds %d keys, bound 3", n)
	}
}

// TestCryptoVerifyAllocs: with the key cached, the host's own code does not
// allocate; what remains is the standard library's (crypto/rsa converts the
// key to its internal form on every call; Ed25519 allocates nothing).
func TestCryptoVerifyAllocs(t *testing.T) {
	k := keys()
	msg := []byte("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI0MiJ9")
	key, sig := spki(t, k.ed.Public()), ed25519.Sign(k.ed, msg)
	if verifySignature(AlgEdDSA, key, msg, sig) != 1 {
		t.Fatal("not verified")
	}
	if n := testing.AllocsPerRun(20, func() { verifySignature(AlgEdDSA, key, msg, sig) }); n != 0 {
		t.Fatalf("EdDSA with a cached key: %v allocations per call", n)
	}
	// A key check does not hash or verify anything: no allocation either.
	rsaKey := spki(t, &k.rsa.PublicKey)
	verifySignature(AlgRS256, rsaKey, nil, nil)
	if n := testing.AllocsPerRun(20, func() { verifySignature(AlgRS256, rsaKey, nil, nil) }); n != 0 {
		t.Fatalf("RSA key check: %v allocations per call", n)
	}
}

// FuzzCryptoVerify calls crypto_verify with arbitrary arguments against a
// memory seeded with real keys and signatures: the only panic allowed is
// OutOfBounds, and the result is 1, 0, BAD_ARGUMENT or TOO_LARGE.
func FuzzCryptoVerify(f *testing.F) {
	k := keys()
	msg := []byte("a.b")
	for _, s := range []struct {
		alg  int32
		key  []byte
		priv crypto.Signer
	}{
		{AlgRS256, spki(f, &k.rsa.PublicKey), k.rsa},
		{AlgPS256, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey), k.rsa},
		{AlgES256, spki(f, &k.ec.PublicKey), k.ec},
		{AlgEdDSA, spki(f, k.ed.Public()), k.ed},
	} {
		sig := jwsSign(f, s.alg, s.priv, msg)
		mem := slices.Concat(s.key, msg, sig)
		kl, ml, sl := uint32(len(s.key)), uint32(len(msg)), uint32(len(sig))
		f.Add(s.alg, uint32(0), kl, kl, ml, kl+ml, sl, mem)
		f.Add(s.alg, uint32(1), kl, kl, ml, kl+ml, sl, mem)         // shifted key
		f.Add(s.alg, uint32(0), kl, kl, ml, kl+ml, sl-1, mem)       // short signature
		f.Add(s.alg^3, uint32(0), kl, kl, ml, kl+ml, sl, mem)       // another algorithm
		f.Add(s.alg, uint32(0), kl, kl, ml, uint32(1<<20), sl, mem) // out of bounds
	}
	f.Fuzz(func(t *testing.T, alg int32, kp, kn, mp, mn, sp, sn uint32, mem []byte) {
		h := newHarness(t, Phase(uint32(alg)%3))
		m := make(testMem, 2048)
		copy(m, mem)
		h.mem, h.c.Mem = m, m
		args := []uint64{i32arg(alg), uint64(kp), uint64(kn), uint64(mp), uint64(mn), uint64(sp), uint64(sn)}
		defer func() {
			if r := recover(); r != nil {
				if oob, ok := r.(OutOfBounds); !ok || oob.Func != "crypto_verify" {
					t.Fatalf("crypto_verify%v panicked: %v", args, r)
				}
			}
		}()
		switch got := h.call32("crypto_verify", args...); got {
		case 0, 1, ErrBadArgument, ErrTooLarge:
		default:
			t.Fatalf("crypto_verify%v = %d", args, got)
		}
	})
}

// BenchmarkCryptoVerifyRS256 is the host path of an RS256 JWT signature:
// crypto_verify with a cached 2048-bit key, as a guest calls it per request.
func BenchmarkCryptoVerifyRS256(b *testing.B) {
	k := keys()
	msg := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiIsImV4cCI6MTcwMDAwMzYwMH0")
	h := newHarness(b, PhaseRequest)
	kp, kn := h.put(string(spki(b, &k.rsa.PublicKey)))
	mp, mn := h.put(string(msg))
	sp, sn := h.put(string(jwsSign(b, AlgRS256, k.rsa, msg)))
	f := h.fns["crypto_verify"]
	stack := make([]uint64, 7)
	b.ReportAllocs()
	for b.Loop() {
		copy(stack, []uint64{AlgRS256, kp, kn, mp, mn, sp, sn})
		f.Fn(h.c, stack)
		if stack[0] != 1 {
			b.Fatalf("crypto_verify = %d", int32(stack[0]))
		}
	}
}

// BenchmarkCryptoVerify: every algorithm through the host function, and
// the parse a cache hit saves.
func BenchmarkCryptoVerify(b *testing.B) {
	k := keys()
	msg := []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI0MiIsImV4cCI6MTcwMDAwMzYwMH0")
	for _, s := range []struct {
		name string
		alg  int32
		key  []byte
		priv crypto.Signer
	}{
		{"RS256", AlgRS256, spki(b, &k.rsa.PublicKey), k.rsa},
		{"PS256", AlgPS256, spki(b, &k.rsa.PublicKey), k.rsa},
		{"ES256", AlgES256, spki(b, &k.ec.PublicKey), k.ec},
		{"EdDSA", AlgEdDSA, spki(b, k.ed.Public()), k.ed},
	} {
		sig := jwsSign(b, s.alg, s.priv, msg)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if verifySignature(s.alg, s.key, msg, sig) != 1 {
					b.Fatal("not verified")
				}
			}
		})
		b.Run(s.name+"-parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if parsePublicKey(s.key) == nil {
					b.Fatal("not parsed")
				}
			}
		})
	}
}
