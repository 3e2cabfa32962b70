package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmgate/wasmgate/sdk/abi"
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

type config struct {
	Keys           []keyConfig `json:"keys"`
	Header         string      `json:"header"`
	Query          string      `json:"query"`
	ConsumerHeader string      `json:"consumer_header"`
	Strip          *bool       `json:"strip"`
	Realm          string      `json:"realm"`
}

type keyConfig struct {
	Consumer  string `json:"consumer"`
	Key       string `json:"key"`
	KeySHA256 string `json:"key_sha256"`
}

type entry struct {
	digest   [sha256.Size]byte
	consumer string
}

// checker is the compiled config.
type checker struct {
	keys           []entry
	header         string // "" when keys come only from the query
	query          string
	consumerHeader string
	strip          bool
	challenge      string
}

const minKeyLen = 16

func newChecker(b []byte) (*checker, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	if len(c.Keys) == 0 {
		return nil, errors.New(`missing "keys": list {consumer, key} pairs`)
	}
	ch := &checker{header: c.Header, query: c.Query, consumerHeader: c.ConsumerHeader, strip: c.Strip == nil || *c.Strip}
	switch ch.header {
	case "":
		ch.header = "X-Api-Key"
	case "-":
		ch.header = ""
		if ch.query == "" {
			return nil, errors.New(`"header" is "-" and there is no "query": the key would have nowhere to be`)
		}
	}
	if ch.header != "" && !abi.IsToken(ch.header) {
		return nil, fmt.Errorf(`"header": %q is not a valid header name`, ch.header)
	}
	if ch.consumerHeader == "" {
		ch.consumerHeader = "X-Consumer"
	}
	if !abi.IsToken(ch.consumerHeader) {
		return nil, fmt.Errorf(`"consumer_header": %q is not a valid header name`, ch.consumerHeader)
	}
	realm := c.Realm
	if realm == "" {
		realm = "wasmgate"
	}
	if strings.ContainsAny(realm, "\"\\\r\n\x00") {
		return nil, fmt.Errorf(`"realm": %q may not contain quotes, backslashes or line breaks`, realm)
	}
	ch.challenge = `ApiKey realm="` + realm + `"`
	if ch.header != "" {
		ch.challenge += `, header="` + ch.header + `"`
	}
	seen := map[[sha256.Size]byte]int{}
	for i, k := range c.Keys {
		e, err := compileKey(k)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if j, dup := seen[e.digest]; dup {
			return nil, fmt.Errorf("keys[%d]: the same key as keys[%d]", i, j)
		}
		seen[e.digest] = i
		ch.keys = append(ch.keys, e)
	}
	return ch, nil
}

func compileKey(k keyConfig) (entry, error) {
	var e entry
	if k.Consumer == "" {
		return e, errors.New(`missing "consumer"`)
	}
	if strings.ContainsAny(k.Consumer, "\r\n\x00") {
		return e, errors.New(`"consumer" may not contain line breaks or NUL`)
	}
	e.consumer = k.Consumer
	switch {
	case k.Key != "" && k.KeySHA256 != "":
		return e, errors.New(`want "key" or "key_sha256", not both`)
	case k.Key != "":
		if len(k.Key) < minKeyLen {
			return e, fmt.Errorf(`"key" of %d bytes: want at least %d`, len(k.Key), minKeyLen)
		}
		e.digest = sha256.Sum256([]byte(k.Key))
	case k.KeySHA256 != "":
		d, err := hex.DecodeString(k.KeySHA256)
		if err != nil || len(d) != sha256.Size {
			return e, errors.New(`"key_sha256": want 64 hex digits`)
		}
		copy(e.digest[:], d)
	default:
		return e, errors.New(`missing "key" or "key_sha256"`)
	}
	return e, nil
}

// lookup returns the consumer of key. It compares the key's digest with
// every configured digest, without stopping at a match, so the time taken
// says nothing about which key (or how much of one) matched.
func (ch *checker) lookup(key string) (string, bool) {
	d := sha256.Sum256([]byte(key))
	found := -1
	for i := range ch.keys {
		eq := subtle.ConstantTimeCompare(d[:], ch.keys[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return "", false
	}
	return ch.keys[found].consumer, true
}

// request is what the plugin needs of a request; *wasmgate.Request has it.
type request interface {
	Header(name string) (string, bool)
	QueryParam(name string) (string, bool)
	SetHeader(name, value string) error
	RemoveHeader(name string) error
	Path() string
	Query() string
	SetPath(path string) error
}

// rejection is a 401 to send.
type rejection struct {
	challenge string
	body      []byte
}

// check authenticates r: on success it returns the consumer, set in the
// consumer header (and the key header stripped); otherwise the 401 to send.
func (ch *checker) check(r request) (consumer string, rej *rejection, err error) {
	if err := r.RemoveHeader(ch.consumerHeader); err != nil {
		return "", nil, err
	}
	key, fromHeader, fromQuery := "", false, false
	if ch.header != "" {
		key, fromHeader = r.Header(ch.header)
		key = strings.TrimSpace(key)
	}
	if key == "" && ch.query != "" {
		key, fromQuery = r.QueryParam(ch.query)
		fromHeader = false
	}
	if key == "" {
		return "", &rejection{ch.challenge, []byte(`{"error":"missing API key"}` + "\n")}, nil
	}
	consumer, ok := ch.lookup(key)
	if !ok {
		return "", &rejection{ch.challenge, []byte(`{"error":"invalid API key"}` + "\n")}, nil
	}
	if err := r.SetHeader(ch.consumerHeader, consumer); err != nil {
		return "", nil, err
	}
	switch {
	case !ch.strip:
	case fromHeader:
		if err := r.RemoveHeader(ch.header); err != nil {
			return "", nil, err
		}
	case fromQuery:
		// request_set_path with a "?" replaces the query: keep the path
		// byte for byte and drop only the key's parameter.
		if q, removed := removeQueryParam(r.Query(), ch.query); removed {
			if err := r.SetPath(r.Path() + "?" + q); err != nil {
				return "", nil, err
			}
		}
	}
	return consumer, nil, nil
}

// removeQueryParam drops every name=value pair of name from a raw query,
// keeping the others exactly as written.
func removeQueryParam(query, name string) (string, bool) {
	var kept []string
	removed := false
	for pair := range strings.SplitSeq(query, "&") {
		if pair == "" {
			continue
		}
		k, _, _ := strings.Cut(pair, "=")
		if k == name || strings.ContainsAny(k, "%+") && unescape(k) == name {
			removed = true
			continue
		}
		kept = append(kept, pair)
	}
	return strings.Join(kept, "&"), removed
}

// unescape decodes %XX and "+" (enough to compare a parameter name).
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
