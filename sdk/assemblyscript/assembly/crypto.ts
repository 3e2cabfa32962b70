// Public-key signature verification done by the host, in native code: an
// order of magnitude faster than the same arithmetic compiled to wasm. It
// works in every hook.

import * as host from "./host";
import { Alg, Code, MAX_VERIFY_MESSAGE } from "./abi";
import { record } from "./errors";
import { bytesPtr, bytesLen } from "./buffer";

/** Whether sig is a valid alg signature of msg by the public key key (DER:
 *  a SubjectPublicKeyInfo for every algorithm, or a PKCS#1 RSAPublicKey for
 *  RSA). A wrong or malformed signature is false with lastCode() 0;
 *  lastCode() is Code.BadArgument for an unknown alg or a key that cannot
 *  be used with it, Code.TooLarge for a msg over 16 MiB. The host caches
 *  parsed keys: pass the same key bytes on every request. */
export function verifySignature(alg: Alg, key: Uint8Array | null, msg: Uint8Array | null, sig: Uint8Array | null): bool {
  if (bytesLen(msg) > MAX_VERIFY_MESSAGE) {
    record("crypto_verify", Code.TooLarge);
    return false;
  }
  const r = host.crypto_verify(alg, bytesPtr(key), bytesLen(key), bytesPtr(msg), bytesLen(msg), bytesPtr(sig), bytesLen(sig));
  record("crypto_verify", r);
  return r == 1;
}

/** 0 when the host can verify alg signatures with key, else
 *  Code.BadArgument. Call it in init for every configured key, so that a
 *  key the gateway cannot use is a config error, not a failure per request. */
export function checkPublicKey(alg: Alg, key: Uint8Array | null): i32 {
  // An empty signature is never valid: the host answers after looking at
  // the key alone, without hashing anything.
  const r = host.crypto_verify(alg, bytesPtr(key), bytesLen(key), 0, 0, 0, 0);
  return record("crypto_verify", r < 0 ? r : 0);
}

/** The JWS name of an algorithm: "RS256", "PS256", "ES256", "EdDSA". */
export function algName(alg: i32): string {
  switch (alg) {
    case Alg.RS256: return "RS256";
    case Alg.PS256: return "PS256";
    case Alg.ES256: return "ES256";
    case Alg.EdDSA: return "EdDSA";
  }
  return "Alg(" + alg.toString() + ")";
}

/** The algorithm of a JWS name, or 0. */
export function algByName(name: string): i32 {
  if (name == "RS256") return Alg.RS256;
  if (name == "PS256") return Alg.PS256;
  if (name == "ES256") return Alg.ES256;
  if (name == "EdDSA") return Alg.EdDSA;
  return 0;
}
