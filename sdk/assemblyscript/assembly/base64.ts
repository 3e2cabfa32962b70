// Base64 (RFC 4648), standard and URL alphabets: keys and signatures in
// configs and tokens come encoded (a JWT is base64url). AssemblyScript's
// standard library has none.

import { StringBuilder } from "./builder";

const STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// @ts-ignore: decorator
@inline function sextet(c: i32, url: bool): i32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (url) {
    if (c == 0x2d) return 62;
    if (c == 0x5f) return 63;
  } else {
    if (c == 0x2b) return 62;
    if (c == 0x2f) return 63;
  }
  return -1;
}

/** Decodes base64 (url: the URL alphabet, as JWTs use), with or without
 *  "=" padding; null on any other byte or a bad length. */
export function base64Decode(s: string, url: bool = false): Uint8Array | null {
  let n = s.length;
  while (n > 0 && s.charCodeAt(n - 1) == 0x3d) n--; // padding
  if (s.length - n > 2 || n % 4 == 1) return null;
  if (s.length != n && s.length % 4 != 0) return null;
  const out = new Uint8Array((n * 3) >> 2);
  let acc: u32 = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const v = sextet(s.charCodeAt(i), url);
    if (v < 0) return null;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = <u8>(acc >> <u32>bits);
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1 << <u32>bits) - 1)) != 0) return null;
  return out;
}

/** Encodes b as base64 (url: the URL alphabet, without padding, as JWTs
 *  use; else the standard one, padded). */
export function base64Encode(b: Uint8Array, url: bool = false): string {
  const alpha = url ? URL : STD;
  const n = b.length;
  const sb = new StringBuilder(((n + 2) / 3) * 4);
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (<u32>b[i] << 16) | (<u32>b[i + 1] << 8) | <u32>b[i + 2];
    sb.appendCode(alpha.charCodeAt(v >> 18)).appendCode(alpha.charCodeAt((v >> 12) & 63));
    sb.appendCode(alpha.charCodeAt((v >> 6) & 63)).appendCode(alpha.charCodeAt(v & 63));
  }
  if (n - i == 1) {
    const v = <u32>b[i] << 16;
    sb.appendCode(alpha.charCodeAt(v >> 18)).appendCode(alpha.charCodeAt((v >> 12) & 63));
    if (!url) sb.append("==");
  } else if (n - i == 2) {
    const v = (<u32>b[i] << 16) | (<u32>b[i + 1] << 8);
    sb.appendCode(alpha.charCodeAt(v >> 18)).appendCode(alpha.charCodeAt((v >> 12) & 63));
    sb.appendCode(alpha.charCodeAt((v >> 6) & 63));
    if (!url) sb.append("=");
  }
  return sb.toString();
}
