// Package fleet keeps what several gateways share in etcd: the config they
// serve, the plugin modules it names (stored by sha256), the plugin
// versions pinned at run time (hot-loads and rollbacks), and the run-time
// traffic state with its audit log. Every gateway of a fleet watches one
// key prefix; a change written through any of them reaches all.
//
// Layout under the prefix P:
//
//	P/config                 the config document (Doc, JSON)
//	P/modules/SHA256/meta    a module's size and chunk count (JSON)
//	P/modules/SHA256/N       its bytes, in chunks under etcd's request limit
//	P/pins/PLUGIN            the version pinned over the config's module (Pin)
//	P/traffic                the traffic state, as the state file holds it
//	P/epoch                  a random id the first push writes (State.Epoch)
//
// Writes that replace a document compare the revision the writer read
// (compare-and-swap), so that two writers cannot silently overwrite each
// other. Modules are content-addressed and written before anything names
// them, so a reader never finds a digest without its bytes.
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Scheme is the URL scheme of a fleet config source.
const Scheme = "etcd://"

// chunkSize keeps each module chunk well under etcd's default request
// limit (1.5 MiB, --max-request-bytes).
const chunkSize = 1 << 20

// MaxModuleBytes bounds a module read back: a digest names its size, and
// a corrupt size must not make a reader allocate without end.
const MaxModuleBytes = 256 << 20

// URL is a parsed fleet source: etcd://HOST:PORT[,HOST:PORT...]/PREFIX.
type URL struct {
	Endpoints []string
	Prefix    string // without a trailing slash, starting with one
}

func (u URL) String() string {
	return Scheme + strings.Join(u.Endpoints, ",") + u.Prefix
}

// IsURL reports whether s names a fleet source rather than a file.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseURL parses etcd://HOST:PORT[,HOST:PORT...]/PREFIX.
func ParseURL(s string) (URL, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return URL{}, fmt.Errorf("fleet source %q: want %sHOST:PORT/PREFIX", s, Scheme)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		return URL{}, fmt.Errorf("fleet source %q: no key prefix (want %sHOST:PORT/PREFIX, e.g. /wasmgate)", s, Scheme)
	}
	if strings.ContainsAny(prefix, "?#% \t\r\n") {
		return URL{}, fmt.Errorf("fleet source %q: the key prefix may not contain '?', '#', '%%' or spaces", s)
	}
	var u URL
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return URL{}, fmt.Errorf("fleet source %q: endpoint %q: want HOST:PORT", s, h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return URL{}, fmt.Errorf("fleet source %q: endpoint %q: bad port", s, h)
		}
		u.Endpoints = append(u.Endpoints, h)
	}
	u.Prefix = prefix
	return u, nil
}

// Doc is the config document a push writes.
type Doc struct {
	// Name is the pushed file's base name: config errors point into it.
	Name string `json:"name"`
	// YAML is the config file's content, byte for byte.
	YAML string `json:"yaml"`
	// Modules maps each plugin's module, as the config writes it, to the
	// sha256 of the bytes pushed with it.
	Modules map[string]string `json:"modules"`
	// Plugins maps each plugin to its module, as the config writes it.
	Plugins  map[string]string `json:"plugins,omitempty"`
	PushedBy string            `json:"pushed_by,omitempty"`
	PushedAt time.Time         `json:"pushed_at"`
}

// Pin is a plugin version chosen at run time over the config's module: a
// hot-load, a rollback, an automatic rollback.
type Pin struct {
	SHA256 string `json:"sha256"`
	Source string `json:"source"` // admin, watch, rollback, auto-rollback
	// Against is the sha256 of the config's module when the pin was made:
	// a pushed config with another module for the plugin ends the pin, as
	// an edited module file does for one gateway.
	Against string    `json:"against"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at"`
}

// State is everything of the fleet at one etcd revision.
type State struct {
	// Epoch names the fleet's store: the first push writes a new one, so
	// that an etcd that lost its data (its revisions start again from 1)
	// is told from one whose revisions merely look old. "" before any push.
	Epoch    string
	Revision int64 // the store's revision the read saw
	Doc      *Doc  // nil: nothing pushed yet, or DocErr
	DocErr   error // the config key holds no config document
	DocRev   int64 // the config key's mod revision, 0 without one
	Pins     map[string]Pin
	// BadPins are pins keys that hold no pin; they are left out of Pins.
	BadPins  []string
	Traffic  []byte // nil: no run-time traffic change yet
	TraffRev int64  // the traffic key's mod revision, 0 without one
}

// ConflictError is a compare-and-swap that lost: the document changed
// since the writer read it.
type ConflictError struct {
	Key              string
	Expected, Actual int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("fleet: %s changed: expected revision %d, found %d (read it again and retry)", e.Key, e.Expected, e.Actual)
}

// Client reads and writes one fleet's keys.
type Client struct {
	u   URL
	cli *clientv3.Client
}

// Dial connects to the fleet's etcd. It does not wait for a connection:
// the first call does, within its context.
func Dial(u URL) (*Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   u.Endpoints,
		DialTimeout: 3 * time.Second,
		// A gateway keeps serving without etcd: the client must notice a
		// dead connection and come back on its own.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		AutoSyncInterval:     0,
		Logger:               zap.NewNop(),
		MaxCallSendMsgSize:   chunkSize + 64<<10,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet %s: %w", u, err)
	}
	return &Client{u: u, cli: cli}, nil
}

// URL is the source the client was dialled for.
func (c *Client) URL() URL { return c.u }

// Close releases the connection.
func (c *Client) Close() error { return c.cli.Close() }

func (c *Client) key(parts ...string) string {
	return c.u.Prefix + "/" + strings.Join(parts, "/")
}

// Read returns the config document, the pins and the traffic state, all at
// one revision.
//
// What the keys hold is the fleet's, not this gateway's, to get right: a
// key that holds no document is reported in the State (DocErr, BadPins),
// never an error of the read, so that one bad key stops neither the rest
// from applying nor a gateway from telling etcd answers.
func (c *Client) Read(ctx context.Context) (*State, error) {
	resp, err := c.cli.Txn(ctx).Then(
		clientv3.OpGet(c.key("config")),
		clientv3.OpGet(c.key("pins")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(c.key("traffic")),
		clientv3.OpGet(c.key("epoch")),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("fleet %s: read: %w", c.u, err)
	}
	st := &State{Revision: resp.Header.Revision, Pins: map[string]Pin{}}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		st.DocRev = kvs[0].ModRevision
		doc := new(Doc)
		if err := json.Unmarshal(kvs[0].Value, doc); err != nil {
			st.DocErr = fmt.Errorf("%s holds no config document (%v): push one with wasmgate config push", c.key("config"), err)
		} else {
			st.Doc = doc
		}
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var p Pin
		name := strings.TrimPrefix(string(kv.Key), c.key("pins")+"/")
		if err := json.Unmarshal(kv.Value, &p); err != nil || !validSHA(p.SHA256) || (p.Against != "" && !validSHA(p.Against)) || name == "" {
			st.BadPins = append(st.BadPins, string(kv.Key))
			continue
		}
		st.Pins[name] = p
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		st.Traffic, st.TraffRev = kvs[0].Value, kvs[0].ModRevision
	}
	if kvs := resp.Responses[3].GetResponseRange().Kvs; len(kvs) > 0 {
		st.Epoch = string(kvs[0].Value)
	}
	return st, nil
}

// Unavailable reports whether err is etcd not answering (a timeout, no
// connection, no leader), rather than an answer this gateway disliked.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	switch status.Code(errors.Unwrap(err)) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		switch se.GRPCStatus().Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
			return true
		}
	}
	return false
}

// PushConfig writes a config document if the config key's mod revision is
// still expect (0: no config yet), and returns the new revision. A lost
// race is a *ConflictError.
func (c *Client) PushConfig(ctx context.Context, doc *Doc, expect int64) (int64, error) {
	for path, sha := range doc.Modules {
		if !validSHA(sha) {
			return 0, fmt.Errorf("fleet: module %q: bad sha256 %q", path, sha)
		}
		if ok, err := c.HasModule(ctx, sha); err != nil {
			return 0, err
		} else if !ok {
			return 0, fmt.Errorf("fleet: module %q (%.12s) is not stored: PutModule first", path, sha)
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return 0, err
	}
	// The pins the new document ends: a plugin it drops, or whose module
	// it changes. Deleted with the write, so that a later push of the old
	// module does not bring an old hot-load back.
	var ops []clientv3.Op
	pins, err := c.cli.Get(ctx, c.key("pins")+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("fleet %s: %w", c.u, err)
	}
	for _, kv := range pins.Kvs {
		var p Pin
		name := strings.TrimPrefix(string(kv.Key), c.key("pins")+"/")
		if json.Unmarshal(kv.Value, &p) != nil || !slices.Contains(doc.pluginModules(name), p.Against) {
			ops = append(ops, clientv3.OpDelete(string(kv.Key), clientv3.WithRev(0)))
		}
	}
	if expect == 0 {
		// A first push (again, after etcd lost its data): a new epoch.
		var id [16]byte
		_, _ = rand.Read(id[:])
		ops = append(ops, clientv3.OpPut(c.key("epoch"), hex.EncodeToString(id[:])))
	}
	return c.swap(ctx, c.key("config"), b, expect, ops...)
}

// pluginModules is the sha256 of each module the document's config gives
// the plugin: a pin made against another is stale. Without the plugin's
// name in the document (Plugins unset: a document from before it was
// recorded), every module of the document counts.
func (d *Doc) pluginModules(name string) []string {
	if m, ok := d.Plugins[name]; ok {
		return []string{d.Modules[m]}
	}
	if d.Plugins != nil {
		return nil
	}
	return slices.Collect(maps.Values(d.Modules))
}

// PutTraffic writes the traffic state if its key's mod revision is still
// expect, and returns the new revision.
func (c *Client) PutTraffic(ctx context.Context, state []byte, expect int64) (int64, error) {
	return c.swap(ctx, c.key("traffic"), state, expect)
}

func (c *Client) swap(ctx context.Context, key string, value []byte, expect int64, also ...clientv3.Op) (int64, error) {
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expect)).
		Then(append([]clientv3.Op{clientv3.OpPut(key, string(value))}, also...)...).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("fleet %s: write %s: %w", c.u, key, err)
	}
	if !resp.Succeeded {
		var actual int64
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			actual = kvs[0].ModRevision
		}
		return 0, &ConflictError{Key: key, Expected: expect, Actual: actual}
	}
	return resp.Header.Revision, nil
}

// SetPin pins a plugin version for the whole fleet. Its module must be
// stored (PutModule).
func (c *Client) SetPin(ctx context.Context, plugin string, p Pin) (int64, error) {
	if !validSHA(p.SHA256) {
		return 0, fmt.Errorf("fleet: pin %q: bad sha256 %q", plugin, p.SHA256)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	resp, err := c.cli.Put(ctx, c.key("pins", plugin), string(b))
	if err != nil {
		return 0, fmt.Errorf("fleet %s: pin %q: %w", c.u, plugin, err)
	}
	return resp.Header.Revision, nil
}

type moduleMeta struct {
	Size   int `json:"size"`
	Chunks int `json:"chunks"`
}

// PutModule stores a module by its sha256 and returns the digest. A module
// already stored is not written again.
func (c *Client) PutModule(ctx context.Context, module []byte) (string, error) {
	sum := sha256.Sum256(module)
	sha := hex.EncodeToString(sum[:])
	if ok, err := c.HasModule(ctx, sha); err != nil || ok {
		return sha, err
	}
	n := 0
	for off := 0; off < len(module) || n == 0; off += chunkSize {
		chunk := module[off:min(off+chunkSize, len(module))]
		if _, err := c.cli.Put(ctx, c.key("modules", sha, strconv.Itoa(n)), string(chunk)); err != nil {
			return "", fmt.Errorf("fleet %s: store module %.12s: %w", c.u, sha, err)
		}
		n++
	}
	meta, _ := json.Marshal(moduleMeta{Size: len(module), Chunks: n})
	// The meta key last: it says the chunks are all there.
	if _, err := c.cli.Put(ctx, c.key("modules", sha, "meta"), string(meta)); err != nil {
		return "", fmt.Errorf("fleet %s: store module %.12s: %w", c.u, sha, err)
	}
	return sha, nil
}

// HasModule reports whether a module is stored whole.
func (c *Client) HasModule(ctx context.Context, sha string) (bool, error) {
	resp, err := c.cli.Get(ctx, c.key("modules", sha, "meta"), clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("fleet %s: module %.12s: %w", c.u, sha, err)
	}
	return resp.Count > 0, nil
}

// ErrNoModule is a digest the fleet has no module for.
var ErrNoModule = errors.New("no such module in the fleet's store")

// Module reads a module back and checks it against its digest.
func (c *Client) Module(ctx context.Context, sha string) ([]byte, error) {
	if !validSHA(sha) {
		return nil, fmt.Errorf("fleet: bad sha256 %q", sha)
	}
	resp, err := c.cli.Get(ctx, c.key("modules", sha, "meta"))
	if err != nil {
		return nil, fmt.Errorf("fleet %s: module %.12s: %w", c.u, sha, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("fleet %s: module %.12s: %w", c.u, sha, ErrNoModule)
	}
	var meta moduleMeta
	if err := json.Unmarshal(resp.Kvs[0].Value, &meta); err != nil || meta.Size < 0 || meta.Size > MaxModuleBytes ||
		meta.Chunks < 1 || meta.Chunks > meta.Size/chunkSize+1 {
		return nil, fmt.Errorf("fleet %s: module %.12s: bad meta %q", c.u, sha, resp.Kvs[0].Value)
	}
	module := make([]byte, 0, meta.Size)
	for i := 0; i < meta.Chunks; i++ {
		r, err := c.cli.Get(ctx, c.key("modules", sha, strconv.Itoa(i)))
		if err != nil {
			return nil, fmt.Errorf("fleet %s: module %.12s: %w", c.u, sha, err)
		}
		if len(r.Kvs) == 0 || len(module)+len(r.Kvs[0].Value) > meta.Size {
			return nil, fmt.Errorf("fleet %s: module %.12s: chunk %d missing or too long", c.u, sha, i)
		}
		module = append(module, r.Kvs[0].Value...)
	}
	if sum := sha256.Sum256(module); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("fleet %s: module %.12s: stored bytes do not match their sha256", c.u, sha)
	}
	return module, nil
}

// Watch sends the revision of every change under the prefix, coalesced: a
// reader that is behind gets the latest revision once. The channel closes
// when ctx ends. The etcd client reconnects by itself and resumes the
// watch where it stopped; a watch that ends anyway is started again.
//
// The first watch starts at revision from (0: now), so that nothing
// written since the caller's read is missed.
func (c *Client) Watch(ctx context.Context, from int64) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			opts := []clientv3.OpOption{clientv3.WithPrefix()}
			if from > 0 {
				opts = append(opts, clientv3.WithRev(from))
				from = 0 // a watch started again starts now, after a full read
			}
			for resp := range c.cli.Watch(wctx, c.u.Prefix+"/", opts...) {
				if resp.Err() != nil {
					break
				}
				send(out, resp.Header.Revision)
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
				send(out, 0) // read everything again: events may have been missed
			}
		}
	}()
	return out
}

// send replaces an unread revision with rev.
func send(out chan int64, rev int64) {
	for {
		select {
		case out <- rev:
			return
		default:
			select {
			case <-out:
			default:
			}
		}
	}
}

func validSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
