// RingportClient: one game client over WebSocket (docs/ts-client.md).
//
// It connects to ws://HOST:PORT/, sends and receives the typed game
// messages of protocol.ts (generated from proto/game.schema), splits the
// frames of each binary message, reconnects with exponential back-off and
// jitter, and resumes its session across drops with the engine control
// messages (docs/protocol.md, "Engine control messages"), as the C
// client (client/client.c) does over TCP:
//
//   out: the game frames of the session not yet acknowledged by the
//        server (with resume) or not yet sent (without). out[0] is frame
//        number outBase of the session; out[0..sent) went out on the
//        current connection. A WebSocket message is delivered whole or
//        not at all, so unlike TCP no frame is ever cut in half: on a drop
//        `sent` goes back to 0 and, after RESUME_OK has dropped what the
//        server had, the rest goes again, in order.
//   in:  each side counts the game frames it received on the session;
//        the client sends ACK{count} every ACK_EVERY frames (the server
//        keeps every frame until then) and RESUME{sid, token, count} as
//        the first frame of a reconnect.
//
// Nothing here is Node-specific: the browser's global WebSocket is the
// default, and Node (18+, which has none before 22) passes the `ws`
// module through `webSocket`. Single-threaded like every JS object: all
// state changes in event handlers and the caller's own calls.

import {
  decode,
  DecodeError,
  encodeFrame,
  isClientType,
  type ClientMessage,
  type MessageOf,
  type ServerMessage,
} from "./protocol.js";
import * as F from "./frames.js";

/**
 * What the client needs of a WebSocket: the browser's and Node's `ws`
 * both fit. Handlers take `any` events because the two libraries type
 * them differently; the client reads only `data`, `code` and `reason`.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: destroy the socket without a close handshake. */
  terminate?: () => void;
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export interface ClientOptions {
  /** ws://HOST:PORT/ (any path: the server accepts every one). */
  url: string;
  /** Makes the socket; default: the global WebSocket (browsers, Node 22+).
   *  Node 18/20: `(url) => new WebSocket(url)` with `ws`. */
  webSocket?: WebSocketFactory;
  /** Connect again after a drop or a failed connect (default true). */
  reconnect?: boolean;
  /** Resume the session after a drop (default true; needs reconnect). */
  resume?: boolean;
  /** Back-off: the delay doubles from min up to max, drawn in [d/2, d]. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A received frame declaring more is a protocol error: the connection
   *  is dropped (default 8192, the engine's default max_payload). */
  maxPayload?: number;
  /** Bytes of game frames kept unsent or unacknowledged; send() past it
   *  throws SendQueueFull (default 1 MiB). */
  sendQueueMax?: number;
  /** A connect, or a resume, not done within this is a failed attempt
   *  (default 10 s). */
  connectTimeoutMs?: number;
  /** In [0, 1); default Math.random. Tests pass their own. */
  random?: () => number;
}

export type ClientState = "idle" | "connecting" | "open" | "backoff" | "closed";

export interface ClientStats {
  connects: number;
  failedConnects: number;
  drops: number;
  resumes: number;
  sessionsLost: number;
  framesIn: number;
  framesOut: number;
  framesResent: number;
}

export interface ClientEvents {
  /** The connection is usable: a fresh one (resumed false: a new session,
   *  so a game logs in again) or one whose RESUME the server accepted. */
  open: { resumed: boolean };
  /** A game message from the server. */
  message: ServerMessage;
  /** Every game frame from the server, also those that do not decode. */
  frame: F.Frame;
  /** A game frame the protocol module refused (a client type from the
   *  server is ENOMSG too: the server never sends one). */
  decodeError: DecodeError;
  /** RESUME_TOKEN: the session is resumable. */
  session: { sid: bigint };
  /** The server's session is gone (RESUME_ERROR code, or 0 when it was
   *  lost before its token came); what was queued for it is dropped. */
  sessionLost: { code: number };
  /** The connection dropped (or a connect failed); `error` says why. */
  drop: { error: string };
  state: ClientState;
  /** Closed for good (close(), leave(), or a drop without reconnect). */
  close: Record<string, never>;
}

/** send() when the queue holds sendQueueMax bytes already. */
export class SendQueueFull extends Error {
  constructor() {
    super("send queue full");
    this.name = "SendQueueFull";
  }
}

const OPEN = 1;
const ACK_EVERY = 32;

type Listener<T> = (ev: T) => void;

/** The C client's back-off (rp_client_backoff_ms): d doubles from min per
 *  attempt up to max; the value is drawn in [d/2, d] ("equal jitter"). */
export function backoffMs(attempt: number, minMs: number, maxMs: number, rnd: number): number {
  let d = minMs;
  for (let i = 1; i < attempt && d < maxMs; i++) d *= 2;
  if (d > maxMs) d = maxMs;
  const half = Math.floor(d / 2);
  return half + Math.floor(rnd * (d - half + 1));
}

function toBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return F.concat(data.map((d) => toBytes(d) ?? new Uint8Array(0)));
  return null; // a text message: not ringport's
}

export class RingportClient {
  private readonly opt: Required<Omit<ClientOptions, "webSocket">> & { webSocket: WebSocketFactory };
  private ws: WebSocketLike | null = null;
  private connected = false;
  private st: ClientState = "idle";
  private readonly reader: F.FrameReader;
  private listeners: { [K in keyof ClientEvents]?: Listener<ClientEvents[K]>[] } = {};
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private stopped = false;
  private flushQueued = false;

  private out: Uint8Array[] = [];
  private outBytes = 0;
  private sent = 0;
  private outBase = 0; // session number of out[0]
  private outHi = 0; // game frames ever sent on the session

  private haveSession = false;
  private sid = 0n;
  private token: Uint8Array = new Uint8Array(F.TOKEN_LEN);
  private resuming = false;
  private fresh = false;
  private inCount = 0;
  private inAcked = 0;

  private readonly counters: ClientStats = {
    connects: 0,
    failedConnects: 0,
    drops: 0,
    resumes: 0,
    sessionsLost: 0,
    framesIn: 0,
    framesOut: 0,
    framesResent: 0,
  };

  constructor(options: ClientOptions) {
    const WS = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
    if (!options.webSocket && !WS) throw new Error("no global WebSocket: pass options.webSocket (Node: the ws module)");
    const webSocket = options.webSocket ?? ((url: string) => new (WS as new (url: string) => WebSocketLike)(url));
    this.opt = {
      url: options.url,
      webSocket,
      reconnect: options.reconnect ?? true,
      resume: options.resume ?? true,
      backoffMinMs: options.backoffMinMs ?? 100,
      backoffMaxMs: options.backoffMaxMs ?? 5000,
      maxPayload: options.maxPayload ?? 8192,
      sendQueueMax: options.sendQueueMax ?? 1 << 20,
      connectTimeoutMs: options.connectTimeoutMs ?? 10000,
      random: options.random ?? Math.random,
    };
    if (this.opt.resume && !this.opt.reconnect) throw new RangeError("resume needs reconnect");
    if (this.opt.backoffMinMs <= 0 || this.opt.backoffMaxMs < this.opt.backoffMinMs)
      throw new RangeError("bad back-off bounds");
    this.reader = new F.FrameReader(this.opt.maxPayload);
  }

  get state(): ClientState {
    return this.st;
  }

  get stats(): ClientStats {
    return { ...this.counters };
  }

  /** The resumable session's id (RESUME_TOKEN), or null. */
  get sessionId(): bigint | null {
    return this.haveSession ? this.sid : null;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents>(event: K, fn: Listener<ClientEvents[K]>): () => void {
    const list = (this.listeners[event] ??= []) as Listener<ClientEvents[K]>[];
    list.push(fn);
    return () => this.off(event, fn);
  }

  off<K extends keyof ClientEvents>(event: K, fn: Listener<ClientEvents[K]>): void {
    const list = this.listeners[event] as Listener<ClientEvents[K]>[] | undefined;
    const i = list ? list.indexOf(fn) : -1;
    if (list && i >= 0) list.splice(i, 1);
  }

  private emit<K extends keyof ClientEvents>(event: K, ev: ClientEvents[K]): void {
    const list = this.listeners[event] as Listener<ClientEvents[K]>[] | undefined;
    if (!list) return;
    for (const fn of list.slice()) {
      try {
        fn(ev);
      } catch (e) {
        // A throwing listener must not break the client's own state: it
        // surfaces as an uncaught error, as a DOM event handler's would.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  private setState(s: ClientState): void {
    if (this.st === s) return;
    this.st = s;
    this.emit("state", s);
  }

  /**
   * Starts connecting. Resolves at the next "open" (at once when open
   * already); rejects if the client is closed for good first, or was.
   */
  connect(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("client closed"));
    if (this.connected && !this.resuming) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => {
      const offOpen = this.on("open", () => {
        offOpen();
        offClose();
        resolve();
      });
      const offClose = this.on("close", () => {
        offOpen();
        offClose();
        reject(new Error("closed before it connected"));
      });
    });
    if (this.st === "idle") this.openSocket();
    return p;
  }

  /**
   * Queues a game message (sent at once when connected, else after the
   * next connect or resume). Throws RangeError for a message the schema
   * refuses, SendQueueFull past sendQueueMax.
   */
  send(m: ClientMessage): void {
    this.sendFrame(encodeFrame(m));
  }

  /** Queues one whole raw game frame (type below 0xFF00). The client keeps
   *  the array until the server has it: do not change it afterwards. */
  sendFrame(frame: Uint8Array): void {
    if (this.stopped) throw new Error("client closed");
    if (frame.length < F.HEADER || (frame[0] | (frame[1] << 8)) !== frame.length - F.HEADER)
      throw new RangeError("not one whole frame");
    if ((frame[2] | (frame[3] << 8)) >= F.Control.FIRST) throw new RangeError("not a game frame");
    if (this.outBytes + frame.length > this.opt.sendQueueMax) throw new SendQueueFull();
    this.out.push(frame);
    this.outBytes += frame.length;
    if (!this.flushQueued) {
      // Frames sent in one turn go out as one WebSocket message.
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  /**
   * Resolves with the next message of type `type` (that `filter` accepts);
   * rejects after timeoutMs. Call it before the action that causes the
   * message, or the message may come first.
   */
  waitFor<T extends ServerMessage["type"]>(
    type: T,
    opts: { timeoutMs?: number; filter?: (m: MessageOf<T>) => boolean } = {},
  ): Promise<MessageOf<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error("no " + type + " within " + (opts.timeoutMs ?? 5000) + " ms"));
      }, opts.timeoutMs ?? 5000);
      const off = this.on("message", (m) => {
        if (m.type !== type) return;
        const mm = m as MessageOf<T>;
        if (opts.filter && !opts.filter(mm)) return;
        off();
        clearTimeout(timer);
        resolve(mm);
      });
    });
  }

  /**
   * Leaves cleanly: sends what is queued, then BYE (the server ends the
   * session at once instead of keeping it for a resume), closes, and
   * resolves once the socket is closed. The client is closed for good.
   */
  leave(timeoutMs = 2000): Promise<void> {
    const ws = this.ws;
    if (!ws || !this.connected || this.resuming) {
      this.close();
      return Promise.resolve();
    }
    this.flush();
    ws.send(F.bye());
    this.stopped = true;
    this.clearTimer();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.loseConnection(ws, "left");
        resolve();
      };
      // The close handshake goes after the BYE on the same connection, so
      // the server reads the BYE first.
      ws.onclose = done;
      ws.onerror = null;
      ws.onmessage = null;
      const t = setTimeout(() => {
        ws.onclose = null;
        ws.terminate?.();
        done();
      }, timeoutMs);
      ws.close(1000, "bye");
    });
  }

  /**
   * Closes at once, without BYE. In Node (`ws`) the socket is cut, which
   * the server takes as a drop (a resumable session is kept for its grace
   * period); a browser's WebSocket can only close with a close frame,
   * which the server takes as the session's end (docs/protocol.md,
   * "WebSocket").
   */
  close(): void {
    this.stopped = true;
    this.clearTimer();
    if (this.ws) this.abort(this.ws, "closed");
    else this.finish();
  }

  /**
   * Drops the current connection and lets the client reconnect: for tests,
   * and for a program that saw the network change. Where the socket can be
   * cut without a close handshake (`ws`'s terminate) this is a network
   * failure to the server and the session resumes; a browser's socket
   * sends a close frame, the server ends the session, and the client
   * starts a new one (sessionLost, then open {resumed: false}).
   */
  dropConnection(): void {
    if (this.ws) this.abort(this.ws, "dropped by the program");
  }

  // ---- the connection ----------------------------------------------------

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private openSocket(): void {
    this.timer = null;
    if (this.stopped) return;
    this.setState("connecting");
    let ws: WebSocketLike;
    try {
      ws = this.opt.webSocket(this.opt.url);
    } catch (e) {
      // A URL the socket refuses: a failed connect like any other.
      this.ws = null;
      this.counters.failedConnects++;
      this.emit("drop", { error: String(e) });
      this.afterDrop();
      return;
    }
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (ev: { data: unknown }) => this.onData(ws, ev.data);
    ws.onclose = (ev: { code?: number; reason?: string }) =>
      this.loseConnection(ws, "closed (" + (ev?.code ?? 0) + (ev?.reason ? " " + ev.reason : "") + ")");
    ws.onerror = () => {
      /* onclose follows and says it */
    };
    this.timer = setTimeout(() => this.abort(ws, "connect timed out"), this.opt.connectTimeoutMs);
  }

  /** Detaches ws and closes it; the client goes on as after a drop. */
  private abort(ws: WebSocketLike, why: string): void {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      if (ws.terminate) ws.terminate();
      else ws.close(4000, why.slice(0, 100));
    } catch {
      /* closing a socket still connecting may throw; it is gone anyway */
    }
    this.loseConnection(ws, why);
  }

  private onOpen(ws: WebSocketLike): void {
    if (ws !== this.ws) return;
    this.clearTimer();
    this.connected = true;
    this.attempt = 0;
    this.counters.connects++;
    this.reader.reset();
    this.sent = 0;
    if (this.opt.resume) {
      this.inAcked = this.inCount; // RESUME tells the server the count
      if (this.haveSession) {
        ws.send(F.resume(this.sid, this.token, BigInt(this.inCount)));
        this.resuming = true;
        this.fresh = false;
        // A RESUME the server never answers is a failed attempt.
        this.timer = setTimeout(() => this.abort(ws, "resume timed out"), this.opt.connectTimeoutMs);
        return;
      }
      ws.send(F.hello());
      this.fresh = true;
    }
    this.setState("open");
    this.flush();
    this.emit("open", { resumed: false });
  }

  private onData(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.ws) return;
    const bytes = toBytes(data);
    if (!bytes) {
      this.abort(ws, "a text message (ringport speaks binary)");
      return;
    }
    let frames: F.Frame[];
    try {
      frames = this.reader.push(bytes);
    } catch (e) {
      this.abort(ws, String(e));
      return;
    }
    for (const f of frames) {
      if (this.opt.resume && f.type >= F.Control.FIRST) {
        const err = this.onControl(f);
        if (err) {
          this.abort(ws, err);
          return;
        }
        if (ws !== this.ws) return;
        continue;
      }
      this.inCount++;
      this.counters.framesIn++;
      this.emit("frame", f);
      let m: ServerMessage;
      try {
        if (isClientType(f.type)) throw new DecodeError("ENOMSG", f.type);
        m = decode(f.type, f.payload) as ServerMessage;
      } catch (e) {
        if (e instanceof DecodeError) this.emit("decodeError", e);
        else throw e;
        continue;
      }
      this.emit("message", m);
      if (ws !== this.ws) return; // a listener closed or dropped it
    }
    if (this.opt.resume && this.haveSession && !this.resuming && this.inCount - this.inAcked >= ACK_EVERY) {
      ws.send(F.ack(BigInt(this.inCount)));
      this.inAcked = this.inCount;
    }
  }

  /** A control frame; an error string drops the connection. */
  private onControl(f: F.Frame): string | null {
    switch (f.type) {
      case F.Control.RESUME_TOKEN: {
        const t = F.parseResumeToken(f.payload);
        if (!t) return "malformed RESUME_TOKEN";
        this.sid = t.sid;
        this.token = t.token;
        this.haveSession = true;
        this.emit("session", { sid: t.sid });
        return null;
      }
      case F.Control.RESUME_OK: {
        const ok = F.parseResumeOk(f.payload);
        if (!ok || !this.resuming) return "unexpected RESUME_OK";
        const got = Number(ok.received);
        if (got < this.outBase || got > this.outHi) {
          this.loseSession(0); // not our session's count: start again
          return "RESUME_OK for another count";
        }
        this.token = ok.token;
        this.resuming = false;
        this.clearTimer();
        this.dropFront(got - this.outBase);
        this.counters.resumes++;
        this.setState("open");
        this.flush();
        this.emit("open", { resumed: true });
        return null;
      }
      case F.Control.RESUME_ERROR:
        this.loseSession(F.parseResumeError(f.payload));
        return "RESUME_ERROR";
      case F.Control.ACK: {
        const a = F.parseAck(f.payload);
        if (a === null) return "malformed ACK";
        const got = Number(a);
        if (got > this.outBase + this.sent) return "ACK for frames never sent";
        if (got > this.outBase) this.dropFront(got - this.outBase);
        return null;
      }
      default:
        return null; // unknown control types are ignored
    }
  }

  /** Sends the frames not yet sent on this connection, as one message. */
  private flush(): void {
    const ws = this.ws;
    if (!ws || !this.connected || this.resuming || this.sent >= this.out.length) return;
    if (ws.readyState !== OPEN) return;
    const batch = this.out.slice(this.sent);
    ws.send(F.concat(batch));
    for (let i = 0; i < batch.length; i++) {
      if (this.outBase + this.sent + i < this.outHi) this.counters.framesResent++;
      else {
        this.outHi++;
        this.counters.framesOut++;
      }
    }
    this.sent = this.out.length;
    // Without resume nothing is kept for a resend (at most once).
    if (!this.opt.resume) this.dropFront(this.sent);
  }

  private dropFront(n: number): void {
    if (n <= 0) return;
    for (const f of this.out.splice(0, n)) this.outBytes -= f.length;
    this.sent = Math.max(0, this.sent - n);
    this.outBase += n;
  }

  private loseSession(code: number): void {
    this.counters.sessionsLost++;
    this.out = [];
    this.outBytes = 0;
    this.sent = this.outBase = this.outHi = 0;
    this.haveSession = this.resuming = false;
    this.inCount = this.inAcked = 0;
    this.emit("sessionLost", { code });
  }

  /** ws is gone (closed, failed, aborted). */
  private loseConnection(ws: WebSocketLike, why: string): void {
    if (ws !== this.ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = null;
    this.clearTimer();
    const wasOpen = this.connected;
    this.connected = false;
    if (wasOpen) this.counters.drops++;
    else this.counters.failedConnects++;
    // A drop before RESUME_TOKEN: the server may hold a session we cannot
    // name, so what we sent or got belongs to no session we can resume.
    if (
      this.opt.resume &&
      wasOpen &&
      this.fresh &&
      !this.haveSession &&
      (this.sent > 0 || this.outHi > 0 || this.inCount > 0)
    )
      this.loseSession(0);
    this.sent = 0;
    this.resuming = false;
    this.reader.reset();
    this.emit("drop", { error: why });
    this.afterDrop();
  }

  private afterDrop(): void {
    if (this.stopped || !this.opt.reconnect) {
      this.finish();
      return;
    }
    this.attempt++;
    const delay = backoffMs(this.attempt, this.opt.backoffMinMs, this.opt.backoffMaxMs, this.opt.random());
    this.setState("backoff");
    this.timer = setTimeout(() => this.openSocket(), delay);
  }

  private finish(): void {
    this.stopped = true;
    this.clearTimer();
    if (this.st === "closed") return;
    this.setState("closed");
    this.emit("close", {});
  }
}
