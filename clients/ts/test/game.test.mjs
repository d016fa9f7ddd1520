// The TypeScript client against a running ringport-game over WebSocket:
// login, chat, a PVP match between two TS clients, a resume after the
// socket drops (with frames sent both ways while it was down), and a
// clean leave, and a server restart (reconnect with back-off, the old
// session refused, a new one). Each test starts its own server on ephemeral ports
// (game-server.mjs) and stops it by PID; every wait is bounded.
import { test } from "node:test";
import assert from "node:assert/strict";

import { RingportClient, EndReason } from "../dist/index.js";
import { loadWs, startGame, gameBinary } from "./game-server.mjs";

const WebSocket = loadWs();
const skip = !WebSocket ? "the ws module is missing (Debian node-ws)" : !gameBinary() ? "no ringport-game binary" : false;

let seq = 0;
// A name of 3..16 [A-Za-z0-9_], new in each test run.
const uniqueName = (base) => base + "_" + ((process.pid + seq++) % 100000);

function client(url, extra = {}) {
  return new RingportClient({ url, webSocket: (u) => new WebSocket(u), backoffMinMs: 20, backoffMaxMs: 200, ...extra });
}

async function login(c, name) {
  const ok = c.waitFor("login_ok");
  c.send({ type: "login", name });
  return ok;
}

async function withGame(fn) {
  const game = await startGame();
  const clients = [];
  try {
    await fn(game, (extra) => {
      const c = client(game.wsUrl, extra);
      clients.push(c);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    assert.equal(await game.stop(), 0, "ringport-game exits 0 on SIGTERM");
  }
}

test("login and chat over WebSocket", { skip, timeout: 20000 }, () =>
  withGame(async (game, make) => {
    const a = make(),
      b = make();
    await Promise.all([a.connect(), b.connect()]);
    const alice = uniqueName("alice"),
      bob = uniqueName("bob");
    const okA = await login(a, alice);
    assert.equal(okA.type, "login_ok");
    await login(b, bob);
    // A bad name is an ERROR, and the session stays.
    const err = a.waitFor("error");
    a.send({ type: "login", name: "x y" });
    assert.equal((await err).code, 4 /* ALREADY_LOGGED_IN: login first */);
    // The chat line reaches both (one channel), the sender included.
    const gotA = a.waitFor("chat_msg"),
      gotB = b.waitFor("chat_msg");
    a.send({ type: "chat", text: "hello from TypeScript" });
    for (const m of [await gotA, await gotB]) {
      assert.equal(m.from, alice);
      assert.equal(m.text, "hello from TypeScript");
    }
    assert.ok(a.sessionId !== null, "HELLO got a resumable session (RESUME_TOKEN)");
  }),
);

test("a PVP match between two TypeScript clients", { skip, timeout: 20000 }, () =>
  withGame(async (game, make) => {
    const a = make(),
      b = make();
    await Promise.all([a.connect(), b.connect()]);
    await login(a, uniqueName("atk"));
    await login(b, uniqueName("def"));
    const startA = a.waitFor("match_start"),
      startB = b.waitFor("match_start");
    const queued = a.waitFor("pvp_queued");
    a.send({ type: "pvp_queue" });
    await queued;
    b.send({ type: "pvp_queue" });
    const [ms, msB] = await Promise.all([startA, startB]);
    assert.equal(ms.room, msB.room);
    assert.notEqual(ms.side, msB.side);
    // a walks up to b and hits until b is knocked out; b stands still.
    let me = ms.f[ms.side],
      them = ms.f[1 - ms.side];
    const offState = a.on("message", (m) => {
      if (m.type !== "pvp_state") return;
      me = m.f[ms.side];
      them = m.f[1 - ms.side];
    });
    const end = a.waitFor("match_end", { timeoutMs: 15000 });
    const endB = b.waitFor("match_end", { timeoutMs: 15000 });
    const lobby = a.waitFor("lobby_enter", { timeoutMs: 15000 });
    const sign = (v) => (v > 0 ? 1 : v < 0 ? -1 : 0);
    const timer = setInterval(() => {
      const dx = them.x - me.x,
        dy = them.y - me.y;
      if (Math.max(Math.abs(dx), Math.abs(dy)) > 2) a.send({ type: "pvp_move", dx: sign(dx), dy: sign(dy) });
      else a.send({ type: "pvp_attack" });
    }, 60);
    try {
      const [e, eB] = await Promise.all([end, endB]);
      assert.equal(e.winner, ms.side);
      assert.equal(e.reason, EndReason.KO);
      assert.deepEqual(eB, e);
      assert.equal(them.hp, 0);
      assert.equal((await lobby).wins, 1);
    } finally {
      clearInterval(timer);
      offState();
    }
  }),
);

test("a dropped socket resumes the session; nothing lost either way", { skip, timeout: 20000 }, () =>
  withGame(async (game, make) => {
    const a = make(),
      b = make();
    await Promise.all([a.connect(), b.connect()]);
    const alice = uniqueName("res_a");
    await login(a, alice);
    await login(b, uniqueName("res_b"));
    const sid = a.sessionId;
    assert.ok(sid !== null);
    const seen = [];
    a.on("message", (m) => {
      if (m.type === "chat_msg") seen.push(m.text);
    });
    const resumed = new Promise((resolve) => a.on("open", (ev) => ev.resumed && resolve()));
    const lost = [];
    a.on("sessionLost", (ev) => lost.push(ev.code));

    a.dropConnection();
    // While a is away: b talks (the server keeps it for a), and a queues a
    // line of its own (sent after RESUME_OK).
    const bHearsA = b.waitFor("chat_msg", { filter: (m) => m.from === alice, timeoutMs: 10000 });
    b.send({ type: "chat", text: "while you were away" });
    a.send({ type: "chat", text: "back" });
    await resumed;
    assert.equal((await bHearsA).text, "back");
    // The session is the same: still logged in, same id, nothing twice.
    assert.equal(a.sessionId, sid);
    const marker = a.waitFor("chat_msg", { filter: (m) => m.text === "marker" });
    b.send({ type: "chat", text: "marker" });
    await marker;
    assert.deepEqual(
      seen.filter((t) => t === "while you were away"),
      ["while you were away"],
    );
    assert.deepEqual(lost, []);
    const s = a.stats;
    assert.equal(s.resumes, 1);
    assert.equal(s.drops, 1);
    assert.equal(s.sessionsLost, 0);
  }),
);

test("leave sends BYE: the session ends at once and the name is free", { skip, timeout: 20000 }, () =>
  withGame(async (game, make) => {
    const a = make(),
      b = make();
    await Promise.all([a.connect(), b.connect()]);
    const name = uniqueName("leaver");
    await login(a, name);
    await a.leave();
    assert.equal(a.state, "closed");
    // The name is released once the server has handled the end
    // (docs/protocol.md, "When a name is free again"): retry briefly.
    for (let i = 0; ; i++) {
      const ok = b.waitFor("login_ok", { timeoutMs: 3000 });
      const err = b.waitFor("error", { timeoutMs: 3000 });
      b.send({ type: "login", name });
      const m = await Promise.race([ok, err]);
      if (m.type === "login_ok") break;
      assert.equal(m.code, 2 /* NAME_TAKEN, for a moment */);
      assert.ok(i < 50, "the name stays taken after BYE");
      await new Promise((r) => setTimeout(r, 20));
    }
  }),
);

test("a restarted server: reconnect with back-off, the session is lost, a new one starts", { skip, timeout: 20000 }, async () => {
  let game = await startGame();
  const { port, wsPort } = game;
  const a = client(game.wsUrl);
  try {
    await a.connect();
    const name = uniqueName("phoenix");
    await login(a, name);
    const lost = new Promise((resolve) => a.on("sessionLost", (ev) => resolve(ev.code)));
    const reopened = new Promise((resolve) => a.on("open", (ev) => !ev.resumed && resolve()));
    assert.equal(await game.stop(), 0);
    // The client backs off while nobody listens, then finds the new server
    // on the same ports, which knows nothing of the session.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(a.stats.failedConnects >= 1, "it retried while the server was down");
    game = await startGame({ port, wsPort });
    assert.equal(await lost, 1 /* RESUME_ERROR: unknown session */);
    await reopened;
    await login(a, name); // a new session: log in again
    assert.ok(a.sessionId !== null);
  } finally {
    a.close();
    assert.equal(await game.stop(), 0);
  }
});
