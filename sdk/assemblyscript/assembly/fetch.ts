// Outbound HTTP: a batch of requests the host runs in parallel while the
// hook waits, handed back together (no callbacks). onRequest and
// onResponse only.

import * as host from "./host";
import { Code } from "./abi";
import { record, recordSDK } from "./errors";
import { ByteWriter, OutboundRequest, OutboundResult, encodeBatch, decodeResults } from "./batch";

// Reused for encoding batches.
const batchBuf = new ByteWriter();

/** Runs the requests in parallel on the host and returns their results in
 *  the same order, once all have finished or timed out; the batch's wall
 *  time is bounded by the longest timeout and the hook's deadline. A
 *  failure of one request is in its result (OutboundResult.err()). null is
 *  a failure of the whole batch, lastCode() says which: Code.BadArgument
 *  (malformed: a method that is not a token, a bad header), Code.TooLarge
 *  (over 64 requests or 16 MiB), Code.NotAllowed (outside onRequest and
 *  onResponse), Code.Unavailable, or CODE_SDK (an empty URL, results that
 *  do not parse) with its message in lastError(). An empty batch makes no
 *  host call and returns no results. */
export function fetch(reqs: OutboundRequest[]): OutboundResult[] | null {
  if (reqs.length == 0) {
    record("http_batch", 0);
    return new Array<OutboundResult>();
  }
  for (let i = 0; i < reqs.length; i++) {
    if (reqs[i].url.length == 0) {
      recordSDK("wasmgate: outbound request " + i.toString() + ": empty URL");
      return null;
    }
  }
  batchBuf.reset();
  encodeBatch(batchBuf, reqs);
  const size = record("http_batch", host.http_batch(batchBuf.ptr, batchBuf.length));
  if (size < 0) return null;
  let buf = new Uint8Array(size);
  const n = host.http_batch_result(buf.dataStart, size);
  if (record("http_batch_result", n) < 0) return null;
  if (n > size) {
    // The host changed its mind about the size; take what it has now.
    buf = new Uint8Array(n);
    if (host.http_batch_result(buf.dataStart, n) != n) {
      record("http_batch_result", Code.Unavailable);
      return null;
    }
  } else if (n < size) {
    buf = buf.subarray(0, n);
  }
  const res = decodeResults(buf);
  if (res === null) {
    recordSDK("wasmgate: http_batch_result: malformed results");
    return null;
  }
  if (res.length != reqs.length) {
    recordSDK("wasmgate: http_batch_result: " + res.length.toString() + " results for " + reqs.length.toString() + " requests");
    return null;
  }
  record("http_batch_result", 0);
  return res;
}

/** fetch of one request; null on failure of the batch. */
export function fetchOne(req: OutboundRequest): OutboundResult | null {
  const res = fetch([req]);
  if (res === null) return null;
  return res[0];
}
