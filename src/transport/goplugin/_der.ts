// Just enough of ASN.1 DER to write one X.509 certificate (_cert.ts): definite lengths, the few
// universal types a certificate uses, and context tags. Encoding only; nothing here parses.

/** Encoded bytes, on a plain ArrayBuffer so WebCrypto takes them as they are. */
export type Der = Uint8Array<ArrayBuffer>;

/** One DER element: `tag`, the minimal definite length, then `contents` back to back. */
export function tlv(tag: number, ...contents: Uint8Array[]): Der {
  const length = contents.reduce((sum, part) => sum + part.length, 0);
  const lengthBytes = length < 0x80 ? [length] : longLength(length);
  const out = new Uint8Array(1 + lengthBytes.length + length);
  out.set([tag, ...lengthBytes]);
  let at = 1 + lengthBytes.length;
  for (const part of contents) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Lengths from 128 up: 0x80 | the count of big-endian bytes that follow. */
function longLength(length: number): number[] {
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return [0x80 | bytes.length, ...bytes];
}

export function sequence(...items: Uint8Array[]): Der {
  return tlv(0x30, ...items);
}

export function set(...items: Uint8Array[]): Der {
  return tlv(0x31, ...items);
}

/**
 * A non-negative INTEGER from its big-endian magnitude: leading zero bytes dropped, one put back
 * when the top bit is set, since DER integers are two's complement (ECDSA r and s, serials).
 */
export function unsignedInteger(magnitude: Uint8Array): Der {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return tlv(0x02, new Uint8Array([0]));
  return (trimmed[0]! & 0x80) ? tlv(0x02, new Uint8Array([0]), trimmed) : tlv(0x02, trimmed);
}

export function boolean(value: boolean): Der {
  return tlv(0x01, new Uint8Array([value ? 0xff : 0]));
}

/** An OBJECT IDENTIFIER from its dotted form ("1.2.840.10045.4.3.2"). */
export function objectIdentifier(dotted: string): Der {
  const [first = 0, second = 0, ...rest] = dotted.split(".").map(Number);
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const base128 = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) {
      base128.unshift(0x80 | (value & 0x7f));
    }
    bytes.push(...base128);
  }
  return tlv(0x06, new Uint8Array(bytes));
}

/** A BIT STRING of whole bytes, or of named bits with `unusedBits` trailing zero bits cut. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Der {
  return tlv(0x03, new Uint8Array([unusedBits]), bytes);
}

export function octetString(bytes: Uint8Array): Der {
  return tlv(0x04, bytes);
}

export function utf8String(text: string): Der {
  return tlv(0x0c, new TextEncoder().encode(text));
}

/**
 * An X.509 Time (RFC 5280 4.1.2.5): UTCTime `YYMMDDHHMMSSZ` for 1950 to 2049, GeneralizedTime
 * `YYYYMMDDHHMMSSZ` from 2050 on; whole seconds, always UTC.
 */
export function time(date: Date): Der {
  const digits = date.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:T]/g, "");
  const year = date.getUTCFullYear();
  const utc = year >= 1950 && year < 2050;
  return tlv(utc ? 0x17 : 0x18, new TextEncoder().encode(utc ? digits.slice(2) : digits));
}

/** `[n] EXPLICIT`: a constructed context tag around `content`. */
export function explicit(n: number, content: Uint8Array): Der {
  return tlv(0xa0 | n, content);
}

/** `[n] IMPLICIT` over a primitive value: the context tag replaces the value's own tag. */
export function implicit(n: number, contents: Uint8Array): Der {
  return tlv(0x80 | n, contents);
}
