// Frames and engine control messages: the layer under the game messages.
//
// A ringport frame is u16 payload length + u16 type + payload, all
// little-endian (docs/protocol.md, "Frame"). Over WebSocket each binary
// message carries one or more whole frames; FrameReader also carries a
// partial frame over to the next message, so it splits a byte stream too.
// The engine control messages (types 0xFF00..0xFFFF: HELLO, RESUME_TOKEN,
// RESUME, RESUME_OK, RESUME_ERROR, ACK, BYE) belong to the engine, not to
// the game schema, and are written here by hand from docs/protocol.md,
// "Engine control messages".

export const HEADER = 4;

export const Control = {
  FIRST: 0xff00,
  HELLO: 0xff00,
  RESUME_TOKEN: 0xff01,
  RESUME: 0xff02,
  RESUME_OK: 0xff03,
  RESUME_ERROR: 0xff04,
  ACK: 0xff05,
  BYE: 0xff06,
} as const;

export const TOKEN_LEN = 16;

/** RESUME_ERROR codes (docs/protocol.md). */
export const ResumeError = {
  UNKNOWN_SESSION: 1,
  WRONG_TOKEN: 2,
  BAD_COUNT: 3,
  MALFORMED: 4,
} as const;

export interface Frame {
  type: number;
  /** A view into the received bytes; copy it to keep it past the handler. */
  payload: Uint8Array;
}

/** Thrown by FrameReader for a header that declares more than the limit. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** One frame: header and payload in one buffer. */
export function frame(type: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (payload.length > 0xffff) throw new RangeError("payload over 65535 bytes");
  const out = new Uint8Array(HEADER + payload.length);
  out[0] = payload.length & 0xff;
  out[1] = payload.length >> 8;
  out[2] = type & 0xff;
  out[3] = type >> 8;
  out.set(payload, HEADER);
  return out;
}

/** Several frames back to back in one buffer (one WebSocket message). */
export function concat(frames: Uint8Array[]): Uint8Array {
  if (frames.length === 1) return frames[0];
  let n = 0;
  for (const f of frames) n += f.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/**
 * Splits received bytes into frames. push() returns the whole frames the
 * bytes complete, in order; a partial one waits for the next push.
 */
export class FrameReader {
  private rest: Uint8Array = new Uint8Array(0);

  /** maxPayload: a header declaring more throws FrameError. */
  constructor(private readonly maxPayload = 0xffff) {}

  push(bytes: Uint8Array): Frame[] {
    let buf = bytes;
    if (this.rest.length > 0) {
      buf = new Uint8Array(this.rest.length + bytes.length);
      buf.set(this.rest);
      buf.set(bytes, this.rest.length);
    }
    const out: Frame[] = [];
    let at = 0;
    while (buf.length - at >= HEADER) {
      const len = buf[at] | (buf[at + 1] << 8);
      const type = buf[at + 2] | (buf[at + 3] << 8);
      if (len > this.maxPayload)
        throw new FrameError("frame of " + len + " bytes over the limit " + this.maxPayload);
      if (buf.length - at - HEADER < len) break;
      out.push({ type, payload: buf.subarray(at + HEADER, at + HEADER + len) });
      at += HEADER + len;
    }
    // Keep a copy of the tail only: the frames above are views into buf.
    this.rest = at === buf.length ? new Uint8Array(0) : buf.slice(at);
    return out;
  }

  /** Bytes of a partial frame waiting for the rest. */
  get pending(): number {
    return this.rest.length;
  }

  reset(): void {
    this.rest = new Uint8Array(0);
  }
}

function u64(p: Uint8Array, at: number): bigint {
  return new DataView(p.buffer, p.byteOffset, p.byteLength).getBigUint64(at, true);
}

function putU64(p: Uint8Array, at: number, v: bigint): void {
  new DataView(p.buffer, p.byteOffset, p.byteLength).setBigUint64(at, v, true);
}

export function hello(): Uint8Array {
  return frame(Control.HELLO);
}

export function bye(): Uint8Array {
  return frame(Control.BYE);
}

export function ack(received: bigint): Uint8Array {
  const p = new Uint8Array(8);
  putU64(p, 0, received);
  return frame(Control.ACK, p);
}

export function resume(sid: bigint, token: Uint8Array, received: bigint): Uint8Array {
  if (token.length !== TOKEN_LEN) throw new RangeError("a token is 16 bytes");
  const p = new Uint8Array(8 + TOKEN_LEN + 8);
  putU64(p, 0, sid);
  p.set(token, 8);
  putU64(p, 8 + TOKEN_LEN, received);
  return frame(Control.RESUME, p);
}

/** RESUME_TOKEN {sid, token}; null when the payload is not 24 bytes. */
export function parseResumeToken(p: Uint8Array): { sid: bigint; token: Uint8Array } | null {
  if (p.length !== 8 + TOKEN_LEN) return null;
  return { sid: u64(p, 0), token: p.slice(8) };
}

/** RESUME_OK {received, token}; null when the payload is not 24 bytes. */
export function parseResumeOk(p: Uint8Array): { received: bigint; token: Uint8Array } | null {
  if (p.length !== 8 + TOKEN_LEN) return null;
  return { received: u64(p, 0), token: p.slice(8) };
}

/** ACK {received}; null when the payload is not 8 bytes. */
export function parseAck(p: Uint8Array): bigint | null {
  return p.length === 8 ? u64(p, 0) : null;
}

/** RESUME_ERROR {code}; 0 when the payload is not 2 bytes. */
export function parseResumeError(p: Uint8Array): number {
  return p.length === 2 ? p[0] | (p[1] << 8) : 0;
}
