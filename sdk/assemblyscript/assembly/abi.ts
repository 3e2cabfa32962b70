// The names, codes and limits of the wasmgate plugin ABI v1 (sdk/ABI.md),
// mirroring the Go declarations in sdk/abi (abi.go, syntax.go). The Go test
// of this SDK (astest) checks these values against sdk/abi, so that the two
// cannot drift apart.

/** The ABI version this SDK implements. */
export const ABI_VERSION: i32 = 1;

/** Return codes of host functions (sdk/ABI.md section 3). */
export enum Code {
  /** Success (host functions answer a non-negative size, status or id). */
  Ok = 0,
  /** No such header, key, metric or rate limit. */
  NotFound = -1,
  /** An argument is invalid. */
  BadArgument = -2,
  /** Not allowed in this hook, or to this destination. */
  NotAllowed = -3,
  /** Over a limit. */
  TooLarge = -4,
  /** Temporarily unavailable, e.g. outbound concurrency exhausted. */
  Unavailable = -5,
}

/** What OnRequest tells the gateway to do next (a hook's result). */
export enum Action {
  /** Pass the request on (on_init: the config is accepted). */
  Continue = 0,
  /** End the chain with the local response built by sendResponse. */
  Stop = 1,
  /** Fail the hook: the route's failure policy applies. Any value the ABI
   *  does not list fails a hook; -1 is the one no version will assign. */
  Fail = -1,
}

/** What a header or body function acts on. */
export enum Kind {
  Request = 0,
  Response = 1,
}

/** Levels of the log function. */
export enum Level {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}

/** Kinds of metric_define. */
export enum MetricKind {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}

/** Statuses of an http_batch result that are not HTTP statuses: a set of
 *  their own, apart from the return codes. */
export enum BatchStatus {
  /** The request's timeout or the hook's deadline passed. */
  Timeout = -1,
  /** Connect or network error. */
  Network = -2,
  /** The destination is not allowed for the route. */
  NotAllowed = -3,
  /** Any other failure, e.g. a response over its size limit. */
  Other = -4,
}

/** Signature algorithms of crypto_verify (the JWS names). */
export enum Alg {
  /** RSASSA-PKCS1-v1_5 with SHA-256. */
  RS256 = 1,
  /** RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt. */
  PS256 = 2,
  /** ECDSA on P-256 with SHA-256; signature r||s, 64 bytes. */
  ES256 = 3,
  /** Ed25519 (pure); signature 64 bytes. */
  EdDSA = 4,
}

// The statuses a plugin may give a response: final ones only.
export const MIN_STATUS: i32 = 200;
export const MAX_STATUS: i32 = 599;

// Limits of the ABI. The SDK checks some of them first to fail without a
// host call; the host enforces them whatever the guest does.
export const MAX_ERROR_MESSAGE: i32 = 1 << 10; // bytes of a set_error message kept
export const MAX_LOG_MESSAGE: i32 = 4 << 10; // bytes of a log line kept
export const MAX_KV_KEY: i32 = 256; // bytes in a KV key
export const MAX_METRICS: i32 = 32; // metrics one plugin defines
export const MAX_METRIC_NAME: i32 = 63; // bytes in a metric name
export const MAX_BATCH: i32 = 64; // requests in one http_batch
export const MAX_BATCH_BYTES: i32 = 16 << 20; // bytes of one encoded batch
export const MAX_BATCH_HEADERS: i32 = 256; // headers of one outbound request
export const MAX_CONSUMER: i32 = 256; // bytes of a consumer id and of a rate_limit key
export const MAX_CACHE_KEY: i32 = 1024; // bytes of a cache_set_key key
export const MAX_CLAIMS: i32 = 16 << 10; // bytes of a set_claims JSON object
export const MAX_VERIFY_KEY: i32 = 16 << 10; // bytes of a crypto_verify key
export const MAX_VERIFY_MESSAGE: i32 = 16 << 20; // bytes of a crypto_verify message

/** The name sdk/ABI.md gives a return code ("NOT_FOUND"), or "" for a value
 *  that is not one. */
export function codeName(code: i32): string {
  switch (code) {
    case Code.NotFound: return "NOT_FOUND";
    case Code.BadArgument: return "BAD_ARGUMENT";
    case Code.NotAllowed: return "NOT_ALLOWED";
    case Code.TooLarge: return "TOO_LARGE";
    case Code.Unavailable: return "UNAVAILABLE";
  }
  return "";
}

/** Whether a response with this status has no body: a 1xx, 204 or 304. */
export function bodylessStatus(status: i32): bool {
  return status < 200 || status == 204 || status == 304;
}

// @ts-ignore: decorator
@inline function isTchar(c: u32): bool {
  // RFC 9110 section 5.6.2: ALPHA / DIGIT / one of !#$%&'*+-.^_`|~
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) return true;
  switch (c) {
    case 0x21: case 0x23: case 0x24: case 0x25: case 0x26: case 0x27: case 0x2a:
    case 0x2b: case 0x2d: case 0x2e: case 0x5e: case 0x5f: case 0x60: case 0x7c: case 0x7e:
      return true;
  }
  return false;
}

/** Whether s is a non-empty HTTP token: what the host accepts as a header
 *  name or a method. Check names taken from the config with it in init, so
 *  that a bad one is a config error rather than BAD_ARGUMENT per request. */
export function isToken(s: string): bool {
  const n = s.length;
  if (n == 0) return false;
  for (let i = 0; i < n; i++) {
    if (!isTchar(<u32>s.charCodeAt(i))) return false;
  }
  return true;
}

/** Whether s is a metric name metric_define accepts: [a-z][a-z0-9_]{0,62}. */
export function validMetricName(s: string): bool {
  const n = s.length;
  if (n == 0 || n > MAX_METRIC_NAME) return false;
  let c = s.charCodeAt(0);
  if (c < 0x61 || c > 0x7a) return false;
  for (let i = 1; i < n; i++) {
    c = s.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x5f)) return false;
  }
  return true;
}
