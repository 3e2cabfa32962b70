package config

import "time"

// Config is the whole gateway configuration: one YAML file.
//
// Every struct in this file may carry two bookkeeping fields that the
// decoder fills and that never appear in YAML:
//
//	Pos Pos       // where the struct's mapping starts in the file
//	At  Positions // where each key's value is, by YAML key
//
// Validation uses them so that every error names FILE:LINE:COL.
type Config struct {
	Listen    Listen     `yaml:"listen" json:"listen,omitempty" doc:"the proxy listener and its client-facing limits"`
	Admin     Admin      `yaml:"admin" json:"admin,omitempty" doc:"the admin API listener"`
	Log       Log        `yaml:"log" json:"log,omitempty" doc:"logging"`
	Upstreams []Upstream `yaml:"upstreams" json:"upstreams,omitempty" doc:"named pools of backend targets"`
	Routes    []Route    `yaml:"routes" json:"routes,omitempty" doc:"named routes, matched by the precedence documented in the README"`
	Plugins   []Plugin   `yaml:"plugins" json:"plugins,omitempty" doc:"named WASM plugins that routes reference"`
	Runtime   Runtime    `yaml:"plugin_runtime" json:"plugin_runtime,omitempty" doc:"the WASM runtime shared by all plugins"`
	Redis     *Redis     `yaml:"redis" json:"redis,omitempty" doc:"the Redis server gateway instances share (rate limits with store: redis)"`
	Traffic   Traffic    `yaml:"traffic" json:"traffic,omitempty" doc:"user segments, feature flags, the sticky user key and where run-time traffic changes are kept"`
	Fleet     Fleet      `yaml:"fleet" json:"fleet,omitempty" doc:"how a gateway serving a config from etcd (serve --config etcd://HOST:PORT/PREFIX) behaves; ignored for a config file"`

	// File is the path the config was read from ("" when read from bytes).
	File string    `yaml:"-" json:"-"`
	Pos  Pos       `yaml:"-" json:"-"`
	At   Positions `yaml:"-" json:"-"`
}

// Listen configures the client-facing proxy listener.
type Listen struct {
	Address               string   `yaml:"address" json:"address,omitempty" doc:"host:port to accept client HTTP on" default:"127.0.0.1:8080"`
	ReadTimeout           Duration `yaml:"read_timeout" json:"read_timeout,omitempty" doc:"max time to read a whole request, headers and body (slowloris guard)" default:"10s"`
	WriteTimeout          Duration `yaml:"write_timeout" json:"write_timeout,omitempty" doc:"max time to write a response" default:"30s"`
	IdleTimeout           Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty" doc:"max time a keep-alive connection waits for its next request" default:"60s"`
	MaxHeaderBytes        ByteSize `yaml:"max_header_bytes" json:"max_header_bytes,omitempty" doc:"max size of the request line and headers; larger gets 431" default:"16KiB"`
	MaxBodyBytes          ByteSize `yaml:"max_body_bytes" json:"max_body_bytes,omitempty" doc:"max request body (larger gets 413) and max body a plugin sets; per-route override" default:"10MiB"`
	MaxResponseBytes      ByteSize `yaml:"max_response_bytes" json:"max_response_bytes,omitempty" doc:"max response body read from an upstream (the gateway holds a response in memory): a larger one is answered 502 upstream_body_too_large; per-route override" default:"64MiB"`
	MaxConcurrentRequests int      `yaml:"max_concurrent_requests" json:"max_concurrent_requests,omitempty" doc:"requests served at once; above it the gateway answers 503 with Retry-After" default:"10000"`
	MaxConnections        int      `yaml:"max_connections" json:"max_connections,omitempty" doc:"open client connections at once" default:"65536"`
	RetryAfter            Duration `yaml:"retry_after" json:"retry_after,omitempty" doc:"Retry-After sent with 503 when over max_concurrent_requests" default:"1s"`
	ShutdownTimeout       Duration `yaml:"shutdown_timeout" json:"shutdown_timeout,omitempty" doc:"how long SIGTERM waits for in-flight requests before exiting" default:"15s"`
	EscapedSlashes        string   `yaml:"escaped_slashes" json:"escaped_slashes,omitempty" doc:"what an encoded slash or backslash (%2F, %5C) or a raw backslash in a request path does: reject (400), unescape (a real /), keep (data, matched and forwarded encoded)" default:"reject" enum:"reject,unescape,keep"`
	PathParameters        string   `yaml:"path_parameters" json:"path_parameters,omitempty" doc:"what a ';' in a request path segment (path parameters: servlet containers strip \";x\" from segments, other servers keep it) does: reject (400) or keep (data, matched and forwarded as is)" default:"reject" enum:"reject,keep"`
	TrustedProxies        []string `yaml:"trusted_proxies" json:"trusted_proxies,omitempty" doc:"CIDRs whose X-Forwarded-For is trusted when finding the client IP"`
	TLS                   *TLS     `yaml:"tls" json:"tls,omitempty" doc:"an HTTPS listener beside address, serving the same routes; absent: plain HTTP only"`
	ProbeAddress          string   `yaml:"probe_address" json:"probe_address,omitempty" doc:"host:port answering GET /healthz and /readyz without a token and saying nothing else, for load balancers and Kubernetes probes; empty: off"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Admin configures the admin API listener.
type Admin struct {
	Address string `yaml:"address" json:"address,omitempty" doc:"host:port of the admin API; loopback unless a token is set" default:"127.0.0.1:9901"`
	Token   string `yaml:"token" json:"token,omitempty" secret:"true" doc:"bearer token for every admin endpoint; WASMGATE_ADMIN_TOKEN wins over it"`
	// WatchConfig reloads the config when its file changes.
	WatchConfig *bool `yaml:"watch_config" json:"watch_config,omitempty" doc:"reload when the config file changes" default:"true"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Log configures the process log and the access log.
type Log struct {
	Level     string `yaml:"level" json:"level,omitempty" doc:"debug, info, warn or error" default:"info" enum:"debug,info,warn,error"`
	AccessLog string `yaml:"access_log" json:"access_log,omitempty" doc:"where access log lines go: stdout, stderr, off, or a file path" default:"stdout"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Upstream is a named pool of targets with a load-balancing policy.
type Upstream struct {
	Name           string          `yaml:"name" json:"name,omitempty" doc:"unique name routes refer to" required:"true"`
	Balance        string          `yaml:"balance" json:"balance,omitempty" doc:"load-balancing algorithm" default:"round_robin" enum:"round_robin,weighted_round_robin,least_inflight,consistent_hash"`
	Hash           *HashOn         `yaml:"hash" json:"hash,omitempty" doc:"what consistent_hash hashes on"`
	Targets        []Target        `yaml:"targets" json:"targets,omitempty" doc:"static targets"`
	Discovery      *Discovery      `yaml:"discovery" json:"discovery,omitempty" doc:"DNS discovery of targets, re-resolved on an interval"`
	Timeouts       Timeouts        `yaml:"timeouts" json:"timeouts,omitempty" doc:"defaults for routes to this upstream"`
	MaxConns       int             `yaml:"max_conns_per_target" json:"max_conns_per_target,omitempty" doc:"max open connections to one target" default:"1024"`
	MaxIdleTime    Duration        `yaml:"max_idle_conn_time" json:"max_idle_conn_time,omitempty" doc:"idle keep-alive connections to a target are closed after this" default:"60s"`
	HealthCheck    *HealthCheck    `yaml:"health_check" json:"health_check,omitempty" doc:"active health checking of targets"`
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker,omitempty" doc:"per-target circuit breaker (passive health)"`
	Retries        *Retries        `yaml:"retries" json:"retries,omitempty" doc:"retry policy for requests to this upstream"`
	TLS            *UpstreamTLS    `yaml:"tls" json:"tls,omitempty" doc:"speak HTTPS to every target (mTLS with client_cert); absent: plain HTTP"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// HashOn says which request property consistent_hash hashes.
type HashOn struct {
	Source string `yaml:"source" json:"source,omitempty" doc:"header, cookie or client_ip" enum:"header,cookie,client_ip" required:"true"`
	Name   string `yaml:"name" json:"name,omitempty" doc:"header or cookie name (not for client_ip)"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Target is one backend address.
type Target struct {
	Address string `yaml:"address" json:"address,omitempty" doc:"host:port" required:"true"`
	Weight  int    `yaml:"weight" json:"weight,omitempty" doc:"relative weight for weighted_round_robin and consistent_hash" default:"1"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Discovery resolves targets from DNS on an interval.
type Discovery struct {
	DNS DNSDiscovery `yaml:"dns" json:"dns,omitempty" doc:"DNS discovery" required:"true"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// DNSDiscovery resolves A/AAAA or SRV records.
type DNSDiscovery struct {
	Name     string   `yaml:"name" json:"name,omitempty" doc:"DNS name to resolve" required:"true"`
	Type     string   `yaml:"type" json:"type,omitempty" doc:"record type: A (A and AAAA), AAAA, or SRV (weights and ports from the records)" default:"A" enum:"A,AAAA,SRV"`
	Port     int      `yaml:"port" json:"port,omitempty" doc:"target port for A/AAAA records"`
	Interval Duration `yaml:"interval" json:"interval,omitempty" doc:"re-resolve interval" default:"10s"`
	Resolver string   `yaml:"resolver" json:"resolver,omitempty" doc:"DNS server host:port; default: the first nameserver of /etc/resolv.conf"`
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty" doc:"timeout of one DNS query" default:"2s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Timeouts bound one proxied request. Zero means "inherit".
type Timeouts struct {
	Connect Duration `yaml:"connect" json:"connect,omitempty" doc:"TCP connect to a target" default:"2s"`
	Read    Duration `yaml:"read" json:"read,omitempty" doc:"waiting for and reading the upstream response" default:"30s"`
	Write   Duration `yaml:"write" json:"write,omitempty" doc:"writing the request to the upstream" default:"30s"`
	Total   Duration `yaml:"total" json:"total,omitempty" doc:"the whole upstream exchange, retries included" default:"60s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// HealthCheck probes every target on an interval.
type HealthCheck struct {
	Path               string   `yaml:"path" json:"path,omitempty" doc:"HTTP path probed with GET" default:"/healthz"`
	Interval           Duration `yaml:"interval" json:"interval,omitempty" doc:"time between probes" default:"5s"`
	Timeout            Duration `yaml:"timeout" json:"timeout,omitempty" doc:"timeout of one probe" default:"1s"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold,omitempty" doc:"consecutive failures that mark a target down" default:"3"`
	HealthyThreshold   int      `yaml:"healthy_threshold" json:"healthy_threshold,omitempty" doc:"consecutive successes that mark it up again" default:"2"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// CircuitBreaker opens a target after consecutive failures.
type CircuitBreaker struct {
	ConsecutiveFailures int      `yaml:"consecutive_failures" json:"consecutive_failures,omitempty" doc:"failures (connect errors, timeouts, 5xx) that open the circuit" default:"5"`
	OpenFor             Duration `yaml:"open_for" json:"open_for,omitempty" doc:"how long the circuit stays open before a trial request" default:"10s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Retries says when a failed upstream exchange is tried again on another target.
type Retries struct {
	Attempts int `yaml:"attempts" json:"attempts,omitempty" doc:"extra attempts after the first" default:"1"`
	// On lists the conditions that are retried: connect_error, timeout, reset, or a status code.
	On []string `yaml:"on" json:"on,omitempty" doc:"conditions retried: connect_error, timeout, reset, or a 5xx status code" default:"[connect_error]"`
	// IdempotentOnly (default true) retries only GET, HEAD, OPTIONS, PUT, DELETE,
	// TRACE, and other methods that carry an Idempotency-Key header.
	IdempotentOnly *bool    `yaml:"idempotent_only" json:"idempotent_only,omitempty" doc:"retry only idempotent methods or requests with an Idempotency-Key header" default:"true"`
	Backoff        Duration `yaml:"backoff" json:"backoff,omitempty" doc:"wait before a retry" default:"0s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Route matches requests and sends them to an upstream (or a weighted split).
type Route struct {
	Name     string   `yaml:"name" json:"name,omitempty" doc:"unique route name (used in metrics and logs)" required:"true"`
	Match    Match    `yaml:"match" json:"match,omitempty" doc:"what requests this route takes" required:"true"`
	Upstream string   `yaml:"upstream" json:"upstream,omitempty" doc:"name of the upstream (or use split, or active and standby)"`
	Split    []Split  `yaml:"split" json:"split,omitempty" doc:"sticky weighted split across upstreams (canary); segment entries first; changed at run time with PUT /routes/NAME/split"`
	Sticky   string   `yaml:"sticky" json:"sticky,omitempty" doc:"where this route's split reads the user key; default traffic.sticky (same forms)"`
	Active   string   `yaml:"active" json:"active,omitempty" doc:"blue-green: the upstream that takes all of the route's traffic"`
	Standby  string   `yaml:"standby" json:"standby,omitempty" doc:"blue-green: the idle upstream; POST /routes/NAME/switch swaps it with active"`
	Shadow   *Shadow  `yaml:"shadow" json:"shadow,omitempty" doc:"copies of requests sent to a candidate upstream and compared with the primary's answers; absent: off"`
	Rewrite  *Rewrite `yaml:"rewrite" json:"rewrite,omitempty" doc:"path and host rewriting before proxying"`
	Timeouts Timeouts `yaml:"timeouts" json:"timeouts,omitempty" doc:"overrides the upstream's timeouts"`
	Retries  *Retries `yaml:"retries" json:"retries,omitempty" doc:"overrides the upstream's retry policy"`
	// MaxBodyBytes overrides listen.max_body_bytes for this route (only lower is effective
	// for the listener's read limit, higher needs the listener raised too).
	MaxBodyBytes ByteSize `yaml:"max_body_bytes" json:"max_body_bytes,omitempty" doc:"max request body for this route (larger gets 413), and max body a plugin sets (body_set, send_response: TOO_LARGE); upstream response bodies are bounded by max_response_bytes"`
	// MaxResponseBytes overrides listen.max_response_bytes for this route.
	MaxResponseBytes ByteSize `yaml:"max_response_bytes" json:"max_response_bytes,omitempty" doc:"max response body read from the upstream for this route (larger: 502 upstream_body_too_large); 0: listen.max_response_bytes"`
	// Priority breaks ties between routes of equal specificity: higher first.
	Priority int `yaml:"priority" json:"priority,omitempty" doc:"tie-breaker between equally specific routes: higher wins"`
	// Plugins is the route's chain: on_request in this order, on_response in reverse.
	Plugins []RoutePlugin `yaml:"plugins" json:"plugins,omitempty" doc:"the plugin chain: on_request in order, on_response in reverse"`
	// Cache stores upstream responses (HTTP caching semantics); absent: off.
	Cache *Cache `yaml:"cache" json:"cache,omitempty" doc:"response cache for this route (RFC 9111 shared cache); absent: off"`
	// RateLimits are decided before the route's plugins, except those keyed
	// by consumer, decided after them (an auth plugin sets the consumer).
	RateLimits []RateLimit `yaml:"rate_limits" json:"rate_limits,omitempty" doc:"rate limits of this route; a request over any of them gets 429"`
	// Authorize is decided after the plugin chain, on what its auth
	// plugins established (set_consumer, set_claims).
	Authorize *Authorize `yaml:"authorize" json:"authorize,omitempty" doc:"who may call the route, decided on the consumer and claims its auth plugins established; absent: anyone the plugins let through"`
	// Idempotency stores the first answer to a request with an
	// idempotency key and replays it for repeats.
	Idempotency *Idempotency `yaml:"idempotency" json:"idempotency,omitempty" doc:"idempotency keys (IETF draft Idempotency-Key): the first answer to a key is stored and replayed for repeats, so a retried write takes effect once; absent: off"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Idempotency is a route's idempotency-key policy (host/idempotency).
type Idempotency struct {
	Header         string   `yaml:"header" json:"header,omitempty" doc:"request header carrying the key" default:"Idempotency-Key"`
	Methods        []string `yaml:"methods" json:"methods,omitempty" doc:"methods whose requests the key applies to" default:"[POST, PATCH]"`
	Required       bool     `yaml:"required" json:"required,omitempty" doc:"refuse a request of those methods without a key (400)"`
	TTL            Duration `yaml:"ttl" json:"ttl,omitempty" doc:"how long the first answer is stored and replayed" default:"24h"`
	Wait           Duration `yaml:"wait" json:"wait,omitempty" doc:"how long a repeat waits for the first request still in flight, then gets 409 with Retry-After; 0: 409 at once"`
	Lease          Duration `yaml:"lease" json:"lease,omitempty" doc:"how long a request holds its key before another may take it over (a gateway that died holding it); default: the route's total upstream timeout plus 5s"`
	MaxBodyBytes   ByteSize `yaml:"max_body_bytes" json:"max_body_bytes,omitempty" doc:"largest response body stored; a larger answer is stored without its body (a repeat gets its status and headers, and Idempotent-Body-Omitted: true)" default:"1MiB"`
	Store          string   `yaml:"store" json:"store,omitempty" doc:"where keys are kept: local (this process; bounded) or redis (shared by every gateway on the redis server); default: redis when a redis section is configured, else local" enum:"local,redis"`
	OnStoreFailure string   `yaml:"on_store_failure" json:"on_store_failure,omitempty" doc:"when the store cannot be reached: reject (503) or pass (forward without the key's protection); default: reject when required, else pass" enum:"reject,pass"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Cache is a route's response cache.
type Cache struct {
	MaxBytes             ByteSize `yaml:"max_bytes" json:"max_bytes,omitempty" doc:"memory budget of the route's cache (keys, headers and bodies)" default:"64MiB"`
	MaxObjectBytes       ByteSize `yaml:"max_object_bytes" json:"max_object_bytes,omitempty" doc:"larger responses are not stored" default:"1MiB"`
	DefaultTTL           Duration `yaml:"default_ttl" json:"default_ttl,omitempty" doc:"freshness of a response whose upstream says nothing (no max-age, s-maxage or Expires); 0: such responses are not stored"`
	MaxTTL               Duration `yaml:"max_ttl" json:"max_ttl,omitempty" doc:"cap on any freshness lifetime (0: none)"`
	Statuses             []int    `yaml:"statuses" json:"statuses,omitempty" doc:"cacheable statuses" default:"[200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]"`
	StaleWhileRevalidate Duration `yaml:"stale_while_revalidate" json:"stale_while_revalidate,omitempty" doc:"serve a stale response this long while one background request refreshes it, when the upstream sends no stale-while-revalidate"`
	StaleIfError         Duration `yaml:"stale_if_error" json:"stale_if_error,omitempty" doc:"serve a stale response this long when the upstream fails, when the upstream sends no stale-if-error"`
	StoreSetCookie       bool     `yaml:"store_set_cookie" json:"store_set_cookie,omitempty" doc:"store responses that carry Set-Cookie (the stored copy drops Set-Cookie)"`
	StatusHeader         string   `yaml:"status_header" json:"status_header,omitempty" doc:"response header with HIT, MISS, STALE, REVALIDATED or BYPASS" default:"X-Cache-Status"`
	Key                  CacheKey `yaml:"key" json:"key,omitempty" doc:"what the cache key is made of, besides host and path"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// CacheKey says which parts of a request make its cache key. Nothing else
// of the request reaches the upstream when the cache fetches a response, so
// an unkeyed header can never change what a later client is served.
type CacheKey struct {
	Headers     []string `yaml:"headers" json:"headers,omitempty" doc:"request headers in the key (and sent upstream on a fill)"`
	Query       []string `yaml:"query" json:"query,omitempty" doc:"query parameters in the key; empty: all of them (sorted)"`
	IgnoreQuery []string `yaml:"ignore_query" json:"ignore_query,omitempty" doc:"query parameters left out of the key and of the fill request; a trailing * matches a prefix (utm_*)"`
	Cookies     []string `yaml:"cookies" json:"cookies,omitempty" doc:"cookies in the key (and sent upstream on a fill)"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// RateLimit is one quota of a route: rate requests per period, with bursts
// up to burst (GCRA, which is a token bucket of burst tokens refilled at
// rate per period).
type RateLimit struct {
	Name   string   `yaml:"name" json:"name,omitempty" doc:"name of the limit (headers, metrics, the rate_limit host function)" required:"true"`
	Rate   int64    `yaml:"rate" json:"rate,omitempty" doc:"requests allowed per period" required:"true"`
	Period Duration `yaml:"period" json:"period,omitempty" doc:"the period rate counts over" default:"1s"`
	Burst  int64    `yaml:"burst" json:"burst,omitempty" doc:"requests that may come at once (default: rate)"`
	Key    string   `yaml:"key" json:"key,omitempty" doc:"who the limit counts: client_ip, route (everyone together), consumer (set by an auth plugin; the client IP without one), header:NAME (the client IP without it), or plugin (only charged through the rate_limit host function)" default:"client_ip"`
	Store  string   `yaml:"store" json:"store,omitempty" doc:"local (this process, exact) or redis (shared by every gateway on the redis server)" default:"local" enum:"local,redis"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Redis is the Redis server shared by gateway instances.
type Redis struct {
	Address       string   `yaml:"address" json:"address,omitempty" doc:"host:port of the Redis server" default:"127.0.0.1:6379"`
	Username      string   `yaml:"username" json:"username,omitempty" doc:"ACL user name (Redis 6+)"`
	Password      string   `yaml:"password" json:"password,omitempty" secret:"true" doc:"password; ${REDIS_PASSWORD} keeps it out of the file"`
	DB            int      `yaml:"db" json:"db,omitempty" doc:"database number"`
	KeyPrefix     string   `yaml:"key_prefix" json:"key_prefix,omitempty" doc:"prefix of every key the gateway writes" default:"wasmgate:"`
	Timeout       Duration `yaml:"timeout" json:"timeout,omitempty" doc:"a decision slower than this is made by the local limiter instead (fail open onto local limits)" default:"50ms"`
	ProbeInterval Duration `yaml:"probe_interval" json:"probe_interval,omitempty" doc:"while Redis is failing, how often it is tried again" default:"1s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Match is the set of conditions a request must meet. Exactly one path form is allowed.
type Match struct {
	Hosts      []string  `yaml:"hosts" json:"hosts,omitempty" doc:"exact hosts or wildcards like *.example.com; empty matches any host"`
	Path       string    `yaml:"path" json:"path,omitempty" doc:"exact path, may contain {param} segments and a trailing {name...} catch-all"`
	PathPrefix string    `yaml:"path_prefix" json:"path_prefix,omitempty" doc:"path prefix on a segment boundary"`
	PathRegex  string    `yaml:"path_regex" json:"path_regex,omitempty" doc:"RE2 regular expression on the path; named groups become params"`
	Methods    []string  `yaml:"methods" json:"methods,omitempty" doc:"HTTP methods; empty matches any"`
	Headers    []KeyCond `yaml:"headers" json:"headers,omitempty" doc:"request header conditions"`
	Query      []KeyCond `yaml:"query" json:"query,omitempty" doc:"query parameter conditions"`
	Cookies    []KeyCond `yaml:"cookies" json:"cookies,omitempty" doc:"cookie conditions"`
	Segments   []string  `yaml:"segments" json:"segments,omitempty" doc:"the user must be in every one of these segments (traffic.segments)"`
	Flags      []string  `yaml:"flags" json:"flags,omitempty" doc:"every one of these feature flags must be on for the user (traffic.flags)"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// KeyCond is a condition on a named header, query parameter or cookie.
// With neither value nor regex it requires presence; with absent: true it requires absence.
type KeyCond struct {
	Name   string `yaml:"name" json:"name,omitempty" doc:"header, query parameter or cookie name" required:"true"`
	Value  string `yaml:"value" json:"value,omitempty" doc:"exact value"`
	Regex  string `yaml:"regex" json:"regex,omitempty" doc:"RE2 regular expression the value must match"`
	Absent bool   `yaml:"absent" json:"absent,omitempty" doc:"the key must not be present"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Split sends a share of a route's traffic to an upstream: every user of a
// segment, or a weight's share of the others by a stable hash of their key.
type Split struct {
	Upstream string `yaml:"upstream" json:"upstream" doc:"upstream name" required:"true"`
	Weight   int    `yaml:"weight" json:"weight" doc:"relative weight, 0 to 100 (0: none of the traffic; at least one weight above 0); not with segment"`
	Segment  string `yaml:"segment" json:"segment,omitempty" doc:"every user of this segment goes to upstream, before weights apply"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Rewrite changes the request before it is proxied.
type Rewrite struct {
	StripPrefix string `yaml:"strip_prefix" json:"strip_prefix,omitempty" doc:"remove this prefix from the path"`
	Path        string `yaml:"path" json:"path,omitempty" doc:"template for the new path: {param} from the match, e.g. /v2/users/{id}"`
	Host        string `yaml:"host" json:"host,omitempty" doc:"Host header sent upstream (default: the client's)"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Runtime configures the WASM runtime.
type Runtime struct {
	Engine       string       `yaml:"engine" json:"engine,omitempty" doc:"WebAssembly engine of the plugins that name none: wazero (pure Go) or wasmtime (Cranelift; needs a gateway built with cgo)" default:"wazero" enum:"wazero,wasmtime"`
	WazeroMode   string       `yaml:"wazero_mode" json:"wazero_mode,omitempty" doc:"how wazero runs plugins: compiler (native code; falls back to the interpreter where unsupported) or interpreter" default:"compiler" enum:"compiler,interpreter"`
	AutoRollback AutoRollback `yaml:"auto_rollback" json:"auto_rollback,omitempty" doc:"roll a hot-loaded plugin version back when it fails right after the swap"`
	Canary       Canary       `yaml:"canary" json:"canary,omitempty" doc:"when a plugin canary (PUT /plugins/NAME/canary) is ended by itself"`
	Interruption string       `yaml:"interruption" json:"interruption,omitempty" doc:"how hook deadlines stop a guest on wazero: instrumented (cheap checks added at load; DWARF line numbers dropped from trap traces) or context (wazero's context watch: keeps DWARF lines, slower loops); wasmtime always counts fuel" default:"instrumented" enum:"instrumented,context"`
	// WasmtimePoolSlots puts wasmtime's instances in its pooling allocator.
	WasmtimePoolSlots int    `yaml:"wasmtime_pool_slots" json:"wasmtime_pool_slots,omitempty" doc:"wasmtime only: instance slots reserved up front in wasmtime's pooling allocator (each 4 GiB of address space, not memory), making instantiation cheaper; a request needing an instance while every slot is taken gets 503 (backpressure); 0 or absent: no pool"`
	WatchDir          string `yaml:"watch_dir" json:"watch_dir,omitempty" doc:"hot-load DIR/NAME.wasm as plugin NAME when the file appears or changes (relative to the config file)"`
	CacheDir          string `yaml:"cache_dir" json:"cache_dir,omitempty" doc:"disk compilation cache, so restarts do not recompile; default: $XDG_CACHE_HOME/wasmgate or ~/.cache/wasmgate; off to disable"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Canary says when a plugin canary is aborted without anyone acting: its
// version fails more than the running one by more than a margin, or a
// route quarantines it.
type Canary struct {
	MinCalls           int `yaml:"min_calls" json:"min_calls,omitempty" doc:"canary hook calls needed before its failure rate counts" default:"20"`
	AbortMarginPercent int `yaml:"abort_margin_percent" json:"abort_margin_percent,omitempty" doc:"the canary is aborted when its failure rate exceeds the running version's by more than this many points" default:"10"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// AutoRollback watches a plugin version hot-loaded through the admin API or
// the plugin directory, and returns to the previous version when its hooks
// fail too often right after the swap.
type AutoRollback struct {
	Window            Duration `yaml:"window" json:"window,omitempty" doc:"how long a new version is watched after its swap (0 turns automatic rollback off)" default:"30s"`
	MinCalls          int      `yaml:"min_calls" json:"min_calls,omitempty" doc:"hook calls needed before the failure rate counts" default:"20"`
	MaxFailurePercent int      `yaml:"max_failure_percent" json:"max_failure_percent,omitempty" doc:"failed hook calls (traps, timeouts, memory, bad returns), in percent, above which the version is rolled back" default:"50"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Plugin is a named WASM module with its runtime settings. Routes reference
// it by name; every route gets its own instances and config.
type Plugin struct {
	Name          string       `yaml:"name" json:"name,omitempty" doc:"unique plugin name routes refer to (metric label, log tag)" required:"true"`
	Module        string       `yaml:"module" json:"module,omitempty" doc:"path of the .wasm file, relative to the config file" required:"true"`
	Engine        string       `yaml:"engine" json:"engine,omitempty" doc:"WebAssembly engine of this plugin, wazero or wasmtime (default: plugin_runtime.engine)" enum:"wazero,wasmtime"`
	ABI           string       `yaml:"abi" json:"abi,omitempty" doc:"the plugin's ABI: native (sdk/ABI.md) or http-wasm (http-wasm's http_handler); detected from the module when unset, and a module (a hot-load, a rollback) of the other refused when set" enum:"native,http-wasm"`
	Mode          string       `yaml:"mode" json:"mode,omitempty" doc:"instance mode: pooled reuses instances, fresh makes one per request" default:"pooled" enum:"pooled,fresh"`
	Pool          PluginPool   `yaml:"pool" json:"pool,omitempty" doc:"instance pool bounds (mode pooled)"`
	Limits        PluginLimits `yaml:"limits" json:"limits,omitempty" doc:"sandbox limits (routes may override)"`
	FailurePolicy string       `yaml:"failure_policy" json:"failure_policy,omitempty" doc:"what a failing plugin does to the request: fail_closed answers 502/503, fail_open skips the plugin" default:"fail_closed" enum:"fail_closed,fail_open"`
	Quarantine    Quarantine   `yaml:"quarantine" json:"quarantine,omitempty" doc:"backing off a plugin that keeps failing"`
	Config        JSON         `yaml:"config" json:"config,omitempty" secret:"true" doc:"default plugin config (any YAML, handed to the plugin as JSON); a route's config replaces it"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// PluginPool bounds a plugin's instances per route.
type PluginPool struct {
	MaxInstances    int      `yaml:"max_instances" json:"max_instances,omitempty" doc:"most instances alive at once per route; a full pool is backpressure" default:"16"`
	MinInstances    int      `yaml:"min_instances" json:"min_instances,omitempty" doc:"instances created and initialized before the route takes traffic" default:"1"`
	AcquireTimeout  Duration `yaml:"acquire_timeout" json:"acquire_timeout,omitempty" doc:"how long a request waits for a free instance before a 503" default:"100ms"`
	MaxRequests     int      `yaml:"max_requests" json:"max_requests,omitempty" doc:"recycle an instance after this many requests (0: never)"`
	MemoryHighWater ByteSize `yaml:"memory_high_water" json:"memory_high_water,omitempty" doc:"recycle an instance whose memory grew past this (0: never)"`
	IdleTimeout     Duration `yaml:"idle_timeout" json:"idle_timeout,omitempty" doc:"close an instance left idle this long, down to min_instances, so a pool grown by a burst shrinks back (0: never)" default:"30s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// PluginLimits are the sandbox limits of one plugin call. In a route's
// plugin entry, zero fields inherit the plugin's.
type PluginLimits struct {
	MemoryPages int      `yaml:"memory_pages" json:"memory_pages,omitempty" doc:"memory cap in 64 KiB pages" default:"512"`
	CallTimeout Duration `yaml:"call_timeout" json:"call_timeout,omitempty" doc:"deadline of one hook call; a guest still running is interrupted" default:"100ms"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Quarantine backs off a plugin that keeps failing, instead of
// re-instantiating it in a tight loop.
type Quarantine struct {
	After      int      `yaml:"after" json:"after,omitempty" doc:"consecutive failures of one stage (cold start, on_request, on_response) that quarantine the plugin on a route" default:"5"`
	Backoff    Duration `yaml:"backoff" json:"backoff,omitempty" doc:"first quarantine period; doubles each time" default:"1s"`
	MaxBackoff Duration `yaml:"max_backoff" json:"max_backoff,omitempty" doc:"longest quarantine period" default:"1m"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// RoutePlugin puts a plugin in a route's chain.
type RoutePlugin struct {
	Name          string       `yaml:"name" json:"name,omitempty" doc:"plugin name (from plugins)" required:"true"`
	Config        JSON         `yaml:"config" json:"config,omitempty" secret:"true" doc:"plugin config for this route (any YAML, handed to the plugin as JSON)"`
	Limits        PluginLimits `yaml:"limits" json:"limits,omitempty" doc:"overrides the plugin's limits"`
	FailurePolicy string       `yaml:"failure_policy" json:"failure_policy,omitempty" doc:"overrides the plugin's failure policy" enum:"fail_closed,fail_open"`
	Outbound      *Outbound    `yaml:"outbound" json:"outbound,omitempty" doc:"destinations the plugin may call (outbound HTTP); none by default"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Outbound lists the destinations a plugin may call on a route.
type Outbound struct {
	Upstreams []string `yaml:"upstreams" json:"upstreams,omitempty" doc:"upstream names, called as upstream://NAME/path"`
	Hosts     []string `yaml:"hosts" json:"hosts,omitempty" doc:"host:port destinations, called as http://host:port/path"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// JSON is a free-form YAML value kept as JSON bytes (plugin configs).
type JSON []byte

// MarshalJSON emits the bytes as they are.
func (j JSON) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// Pos is a position in the config file (1-based; zero when unknown).
type Pos struct {
	Line, Col int
}

// Positions maps a YAML key of a mapping to the position of its value.
type Positions map[string]Pos

// Duration is a time.Duration written as a Go duration string ("250ms", "10s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes, written as an integer or with a unit (KiB, MiB, GiB, KB, MB, GB).
type ByteSize int64

// Fleet configures a gateway of a fleet: one that serves the config,
// plugin versions and traffic state kept in etcd.
type Fleet struct {
	UnreadyWithoutEtcd bool     `yaml:"unready_without_etcd" json:"unready_without_etcd,omitempty" doc:"answer /readyz 503 while etcd cannot be reached (the gateway keeps serving its last good config either way); off by default, so that an etcd outage does not take every gateway out of its load balancer"`
	CheckInterval      Duration `yaml:"check_interval" json:"check_interval,omitempty" doc:"how often the gateway checks that etcd answers and reads everything again if it missed a change; changes arrive through a watch in between" default:"1s"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Traffic is what a migration moves users with: the user key, segments of
// users, feature flags, and the file run-time changes are kept in.
type Traffic struct {
	Sticky    string    `yaml:"sticky" json:"sticky,omitempty" doc:"where a request's user key comes from: header:NAME, cookie:NAME, query:NAME, consumer (named by an auth plugin), or claim:PATH (the bearer JWT's payload, read without verifying it); splits, segment percentages and flag percentages hash it, so a user stays on one side on every gateway; a request without a key is placed at random"`
	StateFile string    `yaml:"state_file" json:"state_file,omitempty" doc:"where run-time changes (splits, switches, flags, plugin canaries), their rollback history and the audit log are written, so that a restart restores them; relative to the config's directory; default: the config's name with .state.json; off: kept in memory only"`
	Segments  []Segment `yaml:"segments" json:"segments,omitempty" doc:"named sets of users, for match.segments and split entries"`
	Flags     []Flag    `yaml:"flags" json:"flags,omitempty" doc:"feature flags held by the gateway, for match.flags and the flag_enabled host function; toggled at run time with PUT /flags/NAME"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Segment is a named set of users: a request is in it when any of the
// segment's criteria holds.
type Segment struct {
	Name    string   `yaml:"name" json:"name,omitempty" doc:"segment name" required:"true"`
	Keys    []string `yaml:"keys" json:"keys,omitempty" doc:"user keys (values of traffic.sticky) in the segment"`
	Source  string   `yaml:"source" json:"source,omitempty" doc:"where values are read: header:NAME, cookie:NAME, query:NAME, consumer or claim:PATH"`
	Values  []string `yaml:"values" json:"values,omitempty" doc:"the request is in the segment when source has one of these values"`
	Percent *int     `yaml:"percent" json:"percent,omitempty" doc:"the request is in the segment when its user key hashes into this share, 0 to 100 (raising it only adds users)"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Flag is a feature flag the gateway evaluates per request.
type Flag struct {
	Name    string `yaml:"name" json:"name" doc:"flag name" required:"true"`
	Enabled bool   `yaml:"enabled" json:"enabled" doc:"off: the flag is off for everyone"`
	Percent int    `yaml:"percent" json:"percent" doc:"share of users (by their key's hash) the flag is on for, 0 to 100" default:"100"`
	Segment string `yaml:"segment" json:"segment,omitempty" doc:"only users of this segment get the flag"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Authorize is a route's authorization policy (host/authz): every part
// given must hold.
type Authorize struct {
	RequireScopes []string `yaml:"require_scopes" json:"require_scopes,omitempty" doc:"OAuth scopes that must all be granted, in the claims' scope (space-separated) or scp (list or string); one missing: 403 with WWW-Authenticate error=\"insufficient_scope\""`
	Claims        JSON     `yaml:"claims" json:"claims,omitempty" doc:"claim (dotted path) to a value or a list of values: the claim must have one of them (a list claim such as groups: one of its elements); numbers and booleans compare as their JSON text"`
	Consumers     []string `yaml:"consumers" json:"consumers,omitempty" doc:"the consumer an auth plugin named (set_consumer) must be one of these"`
	Realm         string   `yaml:"realm" json:"realm,omitempty" doc:"realm of the WWW-Authenticate challenge" default:"wasmgate"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// Shadow mirrors a share of a route's requests to a candidate upstream after
// the primary answered, and compares the two answers. The client's answer
// never waits for or changes with the shadow.
type Shadow struct {
	Upstream      string        `yaml:"upstream" json:"upstream,omitempty" doc:"the candidate upstream copies are sent to" required:"true"`
	Percent       int           `yaml:"percent" json:"percent,omitempty" doc:"share of the route's requests copied, 0 to 100" default:"100"`
	UnsafeMethods bool          `yaml:"unsafe_methods" json:"unsafe_methods,omitempty" doc:"also copy requests whose method is not safe (POST, PUT, PATCH, DELETE...): only for a candidate whose writes go nowhere that matters"`
	MaxInFlight   int           `yaml:"max_in_flight" json:"max_in_flight,omitempty" doc:"shadow requests of this route at once; beyond it copies are dropped and counted, never queued" default:"32"`
	Timeout       Duration      `yaml:"timeout" json:"timeout,omitempty" doc:"bound on each shadow request, connect to last byte" default:"5s"`
	MaxBodyBytes  ByteSize      `yaml:"max_body_bytes" json:"max_body_bytes,omitempty" doc:"larger request bodies are not copied (counted as skipped); larger response bodies are compared by length and hash" default:"1MiB"`
	Compare       ShadowCompare `yaml:"compare" json:"compare,omitempty" doc:"what of the two answers is compared"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// ShadowCompare says what of a primary and a shadow answer must agree.
type ShadowCompare struct {
	Status  *bool    `yaml:"status" json:"status,omitempty" doc:"compare status codes" default:"true"`
	Headers []string `yaml:"headers" json:"headers,omitempty" doc:"response headers compared (case-insensitive names)"`
	Body    string   `yaml:"body" json:"body,omitempty" doc:"json (parsed: key order and number forms ignored), bytes, or none" default:"json" enum:"json,bytes,none"`
	Ignore  []string `yaml:"ignore" json:"ignore,omitempty" doc:"JSON paths left out of the body comparison: data.updated_at, items[*].id, meta.*"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// UpstreamTLS makes an upstream speak HTTPS to all its targets, optionally
// with a client certificate (mTLS). The files are read and checked when the
// config is loaded, and read again when their content changes on disk, with
// no reload: new connections use the new certificates, open keep-alive
// connections keep the ones they were made with. Relative paths are relative
// to the config file, as plugin modules are.
type UpstreamTLS struct {
	CA                 string `yaml:"ca" json:"ca,omitempty" doc:"PEM file of the CA certificates that verify the targets (relative to the config file); empty: the system's roots"`
	ServerName         string `yaml:"server_name" json:"server_name,omitempty" doc:"name sent as SNI and verified in the target's certificate; default: the target's host (with A/AAAA discovery: the DNS name)"`
	ClientCert         string `yaml:"client_cert" json:"client_cert,omitempty" doc:"PEM file of the client certificate (and its chain) presented to targets that ask; needs client_key"`
	ClientKey          string `yaml:"client_key" json:"client_key,omitempty" doc:"PEM file of client_cert's private key (unencrypted); needs client_cert"`
	MinVersion         string `yaml:"min_version" json:"min_version,omitempty" doc:"lowest TLS version accepted; quote it in YAML" default:"1.2" enum:"1.2,1.3"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty" doc:"accept any certificate of any name (tests only: logged as a warning every time the upstream is loaded)"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// TLS is the client-facing HTTPS listener: certificates chosen by SNI,
// TLS 1.2 or later with forward-secret AEAD suites, 1.3 preferred.
type TLS struct {
	Address      string    `yaml:"address" json:"address,omitempty" doc:"host:port to accept HTTPS on" required:"true"`
	Certificates []CertKey `yaml:"certificates" json:"certificates,omitempty" doc:"certificate and key files; each serves the names its certificate lists (SNI, wildcards one label deep); the first also serves a client that names none or an unknown name; re-read when the files change" required:"true"`
	MinVersion   string    `yaml:"min_version" json:"min_version,omitempty" doc:"oldest TLS version accepted" default:"1.2" enum:"1.2,1.3"`
	RedirectHTTP bool      `yaml:"redirect_http" json:"redirect_http,omitempty" doc:"the plain listener (listen.address) answers every request with 308 to the same URL on https"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}

// CertKey names a certificate chain and its private key, PEM files.
type CertKey struct {
	Cert string `yaml:"cert" json:"cert,omitempty" doc:"PEM certificate chain, leaf first (relative to the config's directory)" required:"true"`
	Key  string `yaml:"key" json:"key,omitempty" doc:"PEM private key of the leaf" required:"true"`

	Pos Pos       `yaml:"-" json:"-"`
	At  Positions `yaml:"-" json:"-"`
}
