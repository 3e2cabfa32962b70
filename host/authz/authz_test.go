package authz

import (
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	spec := Spec{
		RequireScopes: []string{"orders:read", "orders:write"},
		Claims: map[string][]string{
			"groups":           {"admins", "ops"},
			"org.plan":         {"pro"},
			"email_verified":   {"true"},
			"tier":             {"2"},
			"realm_access.x.y": {"z"},
		},
		Realm: "orders",
	}
	full := `{"sub":"u1","scope":"orders:read orders:write","groups":["dev","ops"],"org":{"plan":"pro"},"email_verified":true,"tier":2,"realm_access":{"x":{"y":"z"}}}`
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	insufficient := `Bearer realm="orders", error="insufficient_scope", scope="orders:read orders:write"`
	cases := []struct {
		name      string
		consumer  string
		claims    string
		verdict   Verdict
		challenge string
		reason    string
	}{
		{"all hold", "", full, Allow, "", ""},
		{"nothing established", "", "", Unauthenticated, `Bearer realm="orders"`, "no credentials"},
		{"consumer only, claims required", "alice", "", Forbidden, "", `claim "email_verified"`},
		{"scp list instead of scope", "", strings.Replace(full, `"scope":"orders:read orders:write"`, `"scp":["orders:write","orders:read"]`, 1), Allow, "", ""},
		{"scp string", "", strings.Replace(full, `"scope":"orders:read orders:write"`, `"scp":"orders:write orders:read"`, 1), Allow, "", ""},
		{"scope and scp together", "", strings.Replace(full, `"scope":"orders:read orders:write"`, `"scope":"orders:read","scp":["orders:write"]`, 1), Allow, "", ""},
		{"one scope missing", "", strings.Replace(full, "orders:read orders:write", "orders:read", 1), Forbidden, insufficient, `scope "orders:write"`},
		{"scope is a prefix only", "", strings.Replace(full, "orders:read orders:write", "orders:read orders:writer", 1), Forbidden, insufficient, `scope "orders:write"`},
		{"scope with wrong type", "", strings.Replace(full, `"orders:read orders:write"`, `42`, 1), Forbidden, insufficient, "scope"},
		{"group not admitted", "", strings.Replace(full, `["dev","ops"]`, `["dev"]`, 1), Forbidden, "", `claim "groups"`},
		{"group as a string", "", strings.Replace(full, `["dev","ops"]`, `"ops"`, 1), Allow, "", ""},
		{"nested list not flattened", "", strings.Replace(full, `["dev","ops"]`, `[["ops"]]`, 1), Forbidden, "", `claim "groups"`},
		{"nested claim wrong", "", strings.Replace(full, `"plan":"pro"`, `"plan":"free"`, 1), Forbidden, "", `claim "org.plan"`},
		{"nested claim missing", "", strings.Replace(full, `"org":{"plan":"pro"}`, `"org":"pro"`, 1), Forbidden, "", `claim "org.plan"`},
		{"bool as text", "", strings.Replace(full, `"email_verified":true`, `"email_verified":"true"`, 1), Allow, "", ""},
		{"bool false", "", strings.Replace(full, `"email_verified":true`, `"email_verified":false`, 1), Forbidden, "", `claim "email_verified"`},
		{"number as its text", "", strings.Replace(full, `"tier":2`, `"tier":2.0`, 1), Forbidden, "", `claim "tier"`},
		{"null claim", "", strings.Replace(full, `"tier":2`, `"tier":null`, 1), Forbidden, "", `claim "tier"`},
		{"claims not an object", "", `["orders:read"]`, Forbidden, "", "claim"},
		{"claims not JSON", "", `{`, Forbidden, "", "claim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := p.Decide([]byte(c.consumer), []byte(c.claims))
			if d.Verdict != c.verdict || d.Challenge != c.challenge || !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("Decide = %+v, want verdict %d challenge %q reason containing %q", d, c.verdict, c.challenge, c.reason)
			}
			if strings.Contains(d.Reason, "pro") || strings.Contains(d.Reason, "dev") {
				t.Fatalf("reason %q reveals a claim's value", d.Reason)
			}
		})
	}
}

func TestDecideConsumers(t *testing.T) {
	p, err := Compile(Spec{Consumers: []string{"alice", "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		consumer, claims string
		want             Verdict
		status           int
	}{
		{"alice", "", Allow, 200},
		{"bob", `{"sub":"bob"}`, Allow, 200},
		{"carol", "", Forbidden, 403},
		{"", `{"sub":"alice"}`, Forbidden, 403}, // claims are not a consumer
		{"", "", Unauthenticated, 401},
		{"Alice", "", Forbidden, 403},
	} {
		d := p.Decide([]byte(c.consumer), []byte(c.claims))
		if d.Verdict != c.want || d.Status() != c.status {
			t.Errorf("consumer %q claims %q: %+v (status %d), want %d (%d)", c.consumer, c.claims, d, d.Status(), c.want, c.status)
		}
		if d.Verdict == Forbidden && d.Challenge != "" {
			t.Errorf("consumer refusal has challenge %q: RFC 6750 defines no error for it", d.Challenge)
		}
	}
	// An empty policy admits whoever established something.
	p, _ = Compile(Spec{})
	if d := p.Decide([]byte("x"), nil); d.Verdict != Allow {
		t.Errorf("empty policy: %+v", d)
	}
	if d := p.Decide(nil, []byte(`{}`)); d.Verdict != Allow {
		t.Errorf("empty policy, empty claims object: %+v", d)
	}
	if d := p.Decide(nil, nil); d.Verdict != Unauthenticated || d.Challenge != `Bearer realm="wasmgate"` {
		t.Errorf("empty policy, nothing established: %+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{RequireScopes: []string{"a b"}}, `require_scopes: scope "a b" holds ' '`},
		{Spec{RequireScopes: []string{`a"b`}}, `require_scopes: scope "a\"b" holds '"'`},
		{Spec{RequireScopes: []string{""}}, "require_scopes: an empty scope"},
		{Spec{RequireScopes: []string{"é"}}, "require_scopes: scope"},
		{Spec{Claims: map[string][]string{"a..b": {"x"}}}, `claims: claim path "a..b" has an empty segment`},
		{Spec{Claims: map[string][]string{"role": {}}}, `claims: "role" lists no value`},
		{Spec{Consumers: []string{}}, "consumers: the list is empty"},
		{Spec{Consumers: []string{""}}, "consumers: an empty consumer id"},
		{Spec{Realm: `a"b`}, `realm: "a\"b" holds '"'`},
		{Spec{Realm: "a\nb"}, `realm: "a\nb" holds '\n'`},
	} {
		_, err := Compile(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%+v) = %v, want %q", c.spec, err, c.want)
		}
	}
}

func TestChallengeListsScopesOnce(t *testing.T) {
	p, err := Compile(Spec{RequireScopes: []string{"b", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(nil, []byte(`{"scope":"a"}`))
	if want := `Bearer realm="wasmgate", error="insufficient_scope", scope="b a"`; d.Challenge != want {
		t.Fatalf("challenge %q, want %q", d.Challenge, want)
	}
}

func FuzzDecide(f *testing.F) {
	f.Add("u", `{"scope":"read","groups":["a"],"org":{"plan":"pro"}}`)
	f.Add("", `{"scp":["read",1,null,{}]}`)
	f.Add("", `[]`)
	f.Add("", `{"groups":[[["a"]]]}`)
	p, err := Compile(Spec{RequireScopes: []string{"read"}, Claims: map[string][]string{"groups": {"a"}, "org.plan": {"pro"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, consumer, claims string) {
		d := p.Decide([]byte(consumer), []byte(claims))
		if d.Verdict == Allow && (d.Challenge != "" || d.Reason != "") {
			t.Fatalf("allowed with %+v", d)
		}
		if d.Verdict != Allow && d.Reason == "" {
			t.Fatalf("refused without a reason: %+v", d)
		}
	})
}
