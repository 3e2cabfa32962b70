// The wasmgate plugin SDK for AssemblyScript: the plugin ABI v1
// (sdk/ABI.md) with the surface of the Go SDK (sdk/go). See README.md.
//
// A plugin's entry file imports from here and re-exports the hooks:
//
//   import { Plugin, Request, Action, register } from "<sdk>/assembly";
//   export * from "<sdk>/assembly/exports";   // wasmgate_abi_v1, on_init, on_request
//   export * from "<sdk>/assembly/response";  // on_response, if the plugin has one

export * from "./abi";
export * from "./errors";
export { Plugin, register, fail, failLast, emptyObject } from "./plugin";
export { Message, Request, Response, BodyRange, request, response, queryParam, queryUnescape } from "./request";
export { log, logDebug, logInfo, logWarn, logError, levelName, setError, now, nowMillis, fillRandom, randomU64 } from "./log";
export { kvGet, kvGetString, kvSet, kvSetString, kvDelete, kvIncr } from "./kv";
export { defineMetric, recordMetric, Metric, Counter, Gauge, Histogram } from "./metrics";
export {
  HeaderField, OutboundRequest, OutboundResult, ByteWriter, ByteReader,
  appendRequest, encodeBatch, appendResult, decodeResults, decodeBatch,
} from "./batch";
export { fetch, fetchOne } from "./fetch";
export { verifySignature, checkPublicKey, algName, algByName } from "./crypto";
export { setConsumer, setClaims, setClaimsBytes, setCacheKey, flagEnabled, rateLimit, Limit } from "./gateway";
export { JSONKind, JSONValue, JSONWriter, parseJSON, jsonError, quoteJSON, appendQuoted, formatNumber } from "./json";
export { StringBuilder } from "./builder";
export { ConfigReader, parseDuration } from "./config";
export { utf8, bytesToString, asciiLower, equalFold } from "./buffer";
export { base64Decode, base64Encode } from "./base64";

// abort, trace, seed and console replacements (asconfig.json's --use).
import "./runtime";
