// The client without a server: frame splitting, the back-off, and the
// resume state machine driven through a scripted fake WebSocket (what the
// client sends, byte for byte, and what it does with each control frame).
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  RingportClient,
  FrameReader,
  FrameError,
  backoffMs,
  frame,
  concat,
  Control,
  encodeFrame,
} from "../dist/index.js";

test("FrameReader splits several frames in one message and carries a partial one", () => {
  const a = encodeFrame({ type: "login_ok", player_id: 1, gold: 2 });
  const b = encodeFrame({ type: "pvp_queued" });
  const c = encodeFrame({ type: "chat_msg", channel: 0, from: "bob", text: "hi" });
  const all = concat([a, b, c]);
  const r = new FrameReader();
  const got = r.push(all.subarray(0, a.length + b.length + 3));
  assert.deepEqual(
    got.map((f) => f.type),
    [101, 103],
  );
  assert.equal(r.pending, 3);
  const rest = r.push(all.subarray(a.length + b.length + 3));
  assert.equal(rest.length, 1);
  assert.equal(rest[0].type, 102);
  assert.deepEqual(rest[0].payload, c.subarray(4));
  assert.equal(r.pending, 0);
});

test("FrameReader refuses a header over the limit", () => {
  const r = new FrameReader(16);
  assert.throws(() => r.push(frame(1, new Uint8Array(17))), FrameError);
});

test("back-off doubles from min to max, drawn in [d/2, d]", () => {
  assert.equal(backoffMs(1, 100, 5000, 0), 50);
  assert.equal(backoffMs(1, 100, 5000, 1 - 1e-9), 100);
  assert.equal(backoffMs(3, 100, 5000, 1 - 1e-9), 400);
  assert.equal(backoffMs(30, 100, 5000, 0), 2500);
  assert.equal(backoffMs(30, 100, 5000, 1 - 1e-9), 5000);
});

// A WebSocket whose other end is the test.
class FakeWs {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.binaryType = "blob";
    this.sent = [];
    this.closed = false;
    FakeWs.all.push(this);
  }
  send(data) {
    this.sent.push(Uint8Array.from(data));
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  terminate() {
    this.close();
  }
  // The test's side.
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  deliver(...frames) {
    const b = concat(frames);
    this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  // Every frame sent, split.
  frames() {
    const r = new FrameReader();
    return this.sent.flatMap((m) => r.push(m)).map((f) => ({ type: f.type, payload: Uint8Array.from(f.payload) }));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const until = async (cond) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), "condition not reached");
};
const u64 = (v) => {
  const p = new Uint8Array(8);
  new DataView(p.buffer).setBigUint64(0, BigInt(v), true);
  return p;
};
const token = (n) => Uint8Array.from({ length: 16 }, (_, i) => n + i);
const chat = (i) => encodeFrame({ type: "chat_msg", channel: 0, from: "srv", text: "m" + i });

function fresh(extra = {}) {
  FakeWs.all = [];
  return new RingportClient({
    url: "ws://test/",
    webSocket: (u) => new FakeWs(u),
    backoffMinMs: 1,
    backoffMaxMs: 2,
    random: () => 0.5,
    ...extra,
  });
}

test("HELLO first, frames of one turn in one message, RESUME_TOKEN kept", async () => {
  const c = fresh();
  const opened = c.connect();
  const ws = FakeWs.all[0];
  assert.equal(ws.binaryType, "arraybuffer");
  ws.open();
  await opened;
  c.send({ type: "login", name: "alice" });
  c.send({ type: "pvp_queue" });
  await tick();
  assert.equal(ws.sent.length, 2, "HELLO, then one message with both frames");
  assert.deepEqual(ws.sent[0], frame(Control.HELLO));
  assert.deepEqual(
    ws.frames().map((f) => f.type),
    [Control.HELLO, 1, 3],
  );
  ws.deliver(frame(Control.RESUME_TOKEN, concat([u64(7), token(1)])));
  assert.equal(c.sessionId, 7n);
  // connect() on an open client resolves without a second "open".
  let opens = 0;
  c.on("open", () => opens++);
  await c.connect();
  assert.equal(opens, 0);
  assert.equal(FakeWs.all.length, 1);
  c.close();
  await assert.rejects(c.connect(), /closed/);
  assert.equal(c.state, "closed");
});

test("an ACK every 32 game frames; a server ACK drops what it covers", async () => {
  const c = fresh();
  c.connect();
  const ws = FakeWs.all[0];
  ws.open();
  ws.deliver(frame(Control.RESUME_TOKEN, concat([u64(7), token(1)])));
  const got = [];
  c.on("message", (m) => got.push(m.text));
  ws.deliver(...Array.from({ length: 31 }, (_, i) => chat(i)));
  assert.equal(ws.frames().filter((f) => f.type === Control.ACK).length, 0);
  ws.deliver(chat(31));
  const acks = ws.frames().filter((f) => f.type === Control.ACK);
  assert.deepEqual(acks.map((f) => f.payload), [u64(32)]);
  assert.equal(got.length, 32);
  // The server acknowledges 1 of our 2 frames; an ACK past what we sent
  // is a protocol error (the connection is dropped).
  c.send({ type: "chat", text: "a" });
  c.send({ type: "chat", text: "b" });
  await tick();
  ws.deliver(frame(Control.ACK, u64(1)));
  assert.equal(c.state, "open");
  ws.deliver(frame(Control.ACK, u64(3)));
  assert.equal(c.state, "backoff");
  c.close();
});

test("a drop resumes: RESUME with our count, RESUME_OK drops what the server had, the rest is resent", async () => {
  const c = fresh();
  c.connect();
  let ws = FakeWs.all[0];
  ws.open();
  ws.deliver(frame(Control.RESUME_TOKEN, concat([u64(9), token(1)])));
  ws.deliver(chat(0), chat(1), chat(2));
  c.send({ type: "chat", text: "one" });
  c.send({ type: "chat", text: "two" });
  await tick();
  ws.drop();
  assert.equal(c.state, "backoff");
  c.send({ type: "chat", text: "three" }); // queued while away
  await until(() => FakeWs.all.length === 2);
  ws = FakeWs.all[1];
  const opens = [];
  c.on("open", (ev) => opens.push(ev.resumed));
  ws.open();
  await tick();
  // Only RESUME until the answer.
  assert.deepEqual(ws.sent, [frame(Control.RESUME, concat([u64(9), token(1), u64(3)]))]);
  // The server had our first frame: "two" and "three" go again, in order.
  ws.deliver(frame(Control.RESUME_OK, concat([u64(1), token(50)])));
  const texts = ws
    .frames()
    .filter((f) => f.type === 2)
    .map((f) => new TextDecoder().decode(f.payload.subarray(2)));
  assert.deepEqual(texts, ["two", "three"]);
  assert.deepEqual(opens, [true]);
  const s = c.stats;
  assert.equal(s.resumes, 1);
  assert.equal(s.framesOut, 3);
  assert.equal(s.framesResent, 1);
  // The next resume uses the new token.
  ws.drop();
  await until(() => FakeWs.all.length === 3);
  FakeWs.all[2].open();
  assert.deepEqual(FakeWs.all[2].sent[0], frame(Control.RESUME, concat([u64(9), token(50), u64(3)])));
  c.close();
});

test("RESUME_ERROR loses the session: queued frames dropped, HELLO next", async () => {
  const c = fresh();
  c.connect();
  let ws = FakeWs.all[0];
  ws.open();
  ws.deliver(frame(Control.RESUME_TOKEN, concat([u64(9), token(1)])));
  ws.drop();
  c.send({ type: "chat", text: "lost" });
  await until(() => FakeWs.all.length === 2);
  const lost = [];
  c.on("sessionLost", (ev) => lost.push(ev.code));
  FakeWs.all[1].open();
  FakeWs.all[1].deliver(frame(Control.RESUME_ERROR, Uint8Array.of(1, 0)));
  assert.deepEqual(lost, [1]);
  assert.equal(c.sessionId, null);
  await until(() => FakeWs.all.length === 3);
  ws = FakeWs.all[2];
  const opened = new Promise((r) => c.on("open", r));
  ws.open();
  assert.deepEqual(await opened, { resumed: false });
  await tick();
  assert.deepEqual(ws.sent, [frame(Control.HELLO)], "the lost session's frame is not sent");
  c.close();
});

test("a text message drops the connection; without reconnect the client closes", async () => {
  const c = fresh({ reconnect: false, resume: false });
  c.connect().catch(() => {});
  const ws = FakeWs.all[0];
  ws.open();
  const drops = [];
  c.on("drop", (ev) => drops.push(ev.error));
  ws.onmessage({ data: "hello" });
  assert.equal(drops.length, 1);
  assert.match(drops[0], /text/);
  assert.equal(c.state, "closed");
  assert.throws(() => c.send({ type: "pvp_queue" }));
});

test(
  "no global WebSocket and none passed: the constructor says so",
  { skip: globalThis.WebSocket ? "this node has a global WebSocket" : false },
  () => {
    assert.throws(() => new RingportClient({ url: "ws://x/" }), /global WebSocket/);
  },
);

test("sendFrame takes one whole game frame only", () => {
  const c = fresh();
  assert.throws(() => c.sendFrame(Uint8Array.of(1, 0, 2, 0)), /whole/); // length 1, no payload
  assert.throws(() => c.sendFrame(frame(Control.BYE)), /game frame/);
  c.sendFrame(frame(2, Uint8Array.of(0, 0)));
  c.close();
});

test("without resume, frames are sent once and never kept", async () => {
  const c = fresh({ resume: false });
  c.connect();
  const ws = FakeWs.all[0];
  ws.open();
  c.send({ type: "pvp_queue" });
  await tick();
  assert.deepEqual(ws.sent, [frame(3)], "no HELLO without resume");
  ws.drop();
  await until(() => FakeWs.all.length === 2);
  FakeWs.all[1].open();
  await tick();
  assert.deepEqual(FakeWs.all[1].sent, []);
  c.close();
});

test("a client type from the server is a decodeError, not a message", async () => {
  const c = fresh();
  c.connect();
  const ws = FakeWs.all[0];
  ws.open();
  const errors = [],
    messages = [];
  c.on("decodeError", (e) => errors.push(e.code));
  c.on("message", (m) => messages.push(m.type));
  ws.deliver(encodeFrame({ type: "login", name: "bob" }), frame(101, new Uint8Array(3)), encodeFrame({ type: "pvp_queued" }));
  assert.deepEqual(errors, ["ENOMSG", "EBADMSG"]);
  assert.deepEqual(messages, ["pvp_queued"]);
  assert.equal(c.state, "open", "a frame that does not decode does not drop the connection");
  c.close();
});
