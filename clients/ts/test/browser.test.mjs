// The TypeScript client in a real browser, with nothing but the browser's
// own WebSocket: headless Chromium (Debian chromium-headless-shell) loads
// the compiled ES modules from a small HTTP server of the test, and, driven
// over the DevTools protocol, logs in to a running ringport-game, chats,
// drops its socket (a browser can only close with a close frame, which
// the server takes as the session's end: the client gets RESUME_ERROR 1,
// starts a new session and logs in again), and leaves. Proves "no runtime
// dependencies in the browser".
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { loadWs, startGame, gameBinary } from "./game-server.mjs";

const WebSocket = loadWs();
const dist = fileURLToPath(new URL("../dist/", import.meta.url));

function chromium() {
  if (process.env.RINGPORT_CHROMIUM) return process.env.RINGPORT_CHROMIUM;
  for (const name of ["chromium-headless-shell", "chromium", "google-chrome"]) {
    try {
      return execFileSync("sh", ["-c", "command -v " + name], { encoding: "utf8" }).trim();
    } catch {
      /* next */
    }
  }
  return null;
}

const browser = chromium();
const skip = !WebSocket
  ? "the ws module is missing (Debian node-ws)"
  : !gameBinary()
    ? "no ringport-game binary"
    : !browser
      ? "no Chromium (Debian chromium-headless-shell)"
      : false;

// Serves the page and dist/*.js (ES modules need http:, not file:).
function serveDist() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>ringport-client</title>");
      return;
    }
    const m = /^\/dist\/([\w.-]+\.js)$/.exec(url.pathname);
    if (!m || !existsSync(join(dist, m[1]))) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "text/javascript" });
    res.end(readFileSync(join(dist, m[1])));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Starts Chromium on a page; resolves { pid, devtools: "127.0.0.1:PORT", stop }.
function startBrowser(pageUrl) {
  // Beside the staged test (ctest.sh empties the folder before each run):
  // Chromium's helpers may write the profile for a while after it exits.
  const profile = mkdtempSync(fileURLToPath(new URL("./chromium-profile-", import.meta.url)));
  const args = [
    "--headless",
    "--no-sandbox", // the tests may run as root
    "--disable-gpu",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--user-data-dir=" + profile,
    pageUrl,
  ];
  // Its own process group: Chromium's helper processes (zygote, renderer)
  // go with it, by the group's id, and none holds our pipe open after.
  const child = spawn(browser, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  const exited = new Promise((r) => child.on("exit", r));
  const stop = async () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
    await exited;
    child.stderr.destroy();
  };
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => {
      stop();
      reject(new Error("Chromium printed no DevTools address: " + err.slice(-2000)));
    }, 15000);
    child.stderr.on("data", (d) => {
      err += d;
      const m = /DevTools listening on ws:\/\/([^/\s]+)\//.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ devtools: m[1], stop });
      }
    });
  });
}

// One DevTools connection to the page: evaluate(expr) -> its value.
async function pageSession(devtools, pageUrl) {
  let target;
  for (let i = 0; i < 100 && !target; i++) {
    const list = await (await fetch("http://" + devtools + "/json/list")).json();
    target = list.find((t) => t.type === "page" && t.url.startsWith(pageUrl));
    if (!target) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(target, "the page never opened");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let id = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  });
  const call = (method, params) =>
    new Promise((resolve, reject) => {
      pending.set(++id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const session = {
    async evaluate(expression) {
      const r = await call("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
      if (r.exceptionDetails)
        throw new Error("in the page: " + (r.exceptionDetails.exception?.description ?? r.exceptionDetails.text));
      return r.result.value;
    },
    close: () => ws.close(),
  };
  // The target may exist before its navigation commits: wait for the page.
  for (let i = 0; i < 200; i++) {
    if ((await session.evaluate("location.href")) === pageUrl) return session;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("the page never loaded " + pageUrl);
}

test("in Chromium, with the browser's own WebSocket: login, chat, a lost session, a leave", { skip, timeout: 30000 }, async () => {
  const game = await startGame();
  const http = await serveDist();
  const pageUrl = "http://127.0.0.1:" + http.address().port + "/";
  let chrome = null,
    page = null,
    hang = null;
  try {
    chrome = await startBrowser(pageUrl);
    page = await pageSession(chrome.devtools, pageUrl);
    // The page notes each step in window.steps, so a hang says where.
    const run = page.evaluate(`(async () => {
      const steps = (window.steps = []);
      const { RingportClient } = await import(location.origin + "/dist/index.js");
      const out = { globalWebSocket: typeof WebSocket };
      const c = new RingportClient({ url: ${JSON.stringify(game.wsUrl)}, backoffMinMs: 20, backoffMaxMs: 200 });
      c.on("drop", (ev) => steps.push("drop: " + ev.error));
      c.on("state", (st) => steps.push("state " + st));
      c.on("sessionLost", (ev) => steps.push("sessionLost " + ev.code));
      const name = "browser_${process.pid % 100000}";
      const login = async () => {
        for (;;) {
          const ok = c.waitFor("login_ok"), err = c.waitFor("error");
          c.send({ type: "login", name });
          const m = await Promise.race([ok, err]);
          if (m.type === "login_ok") return m.type;
          if (m.code !== 2) throw new Error("login refused: " + m.code);
          await new Promise((r) => setTimeout(r, 20)); // NAME_TAKEN, for a moment
        }
      };
      await c.connect();
      steps.push("connected");
      out.login = await login();
      steps.push("logged in");
      let chat = c.waitFor("chat_msg");
      c.send({ type: "chat", text: "hello from Chromium" });
      out.chat = (await chat).text;
      // A browser's WebSocket can only end with a close frame, which the
      // server takes as the session's end: the reconnect's RESUME gets
      // RESUME_ERROR 1 and the client starts a new session.
      const lost = new Promise((r) => c.on("sessionLost", (ev) => r(ev.code)));
      const reopened = new Promise((r) => c.on("open", (ev) => !ev.resumed && r()));
      c.dropConnection();
      out.lostCode = await lost;
      await reopened;
      steps.push("reopened");
      out.relogin = await login();
      chat = c.waitFor("chat_msg");
      c.send({ type: "chat", text: "back again" });
      out.afterDrop = (await chat).text;
      out.stats = c.stats;
      await c.leave();
      out.state = c.state;
      return out;
    })()`);
    const result = await Promise.race([
      run,
      new Promise((_, reject) => {
        hang = setTimeout(async () => {
          reject(new Error("the page hangs after: " + (await page.evaluate("JSON.stringify(window.steps)"))));
        }, 15000);
      }),
    ]);
    clearTimeout(hang);
    assert.equal(result.globalWebSocket, "function");
    assert.equal(result.login, "login_ok");
    assert.equal(result.chat, "hello from Chromium");
    assert.equal(result.lostCode, 1);
    assert.equal(result.relogin, "login_ok");
    assert.equal(result.afterDrop, "back again");
    assert.equal(result.stats.sessionsLost, 1);
    assert.equal(result.stats.connects, 3, "the first, the refused RESUME, the new session");
    assert.equal(result.state, "closed");
  } finally {
    // Each step runs whatever the one before did: nothing is left behind.
    page?.close();
    const stopped = chrome ? chrome.stop() : Promise.resolve();
    http.closeAllConnections?.();
    http.close();
    const code = await game.stop();
    await stopped;
    assert.equal(code, 0);
  }
});
