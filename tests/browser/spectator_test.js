#!/usr/bin/env node
// The spectator page in a real browser (docs/game.md, "Spectators"):
// starts ringport-game (ephemeral ports, --ws-port 0, --metrics) and 200
// bots (ringport-bench game), opens http://127.0.0.1:METRICS/ in headless
// Chromium driven over the DevTools protocol (Chromium's --screenshot
// cannot capture a page fed live by a WebSocket), polls what the page
// shows (window.spectator) until it shows at least 150 players online and
// an arena whose tick advances, checks that it drew at most 5 times a
// second, and saves a PNG of the page.
//
//   NODE_PATH=/usr/share/nodejs node tests/browser/spectator_test.js \
//       --game BUILD/examples/game/ringport-game \
//       --bench BUILD/tools/bench/ringport-bench --out BUILD/spectator.png
//       [--bots 200] [--want-online 150] [--chromium PATH]
//
// Exit 0: seen and saved; 1: not seen within the deadline (or a program
// failed); 77: skipped (no Chromium, no `ws` module, or no page built),
// with one line saying why. Bounded: everything must be done within
// DEADLINE_MS; every process it started is stopped by its PID on every
// path out (pass, fail, deadline, signal, exception), and the temporary
// Chromium profile is removed.
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");

function arg(name, dflt) {
  const i = process.argv.indexOf("--" + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const DEADLINE_MS = 30000;
const BOTS = Number(arg("bots", "200"));
const WANT_ONLINE = Number(arg("want-online", "150"));

const game = arg("game");
const bench = arg("bench");
const out = arg("out", "spectator.png");
const pageBuilt = arg("page-built", "1") === "1";
const chromiumCandidates = [arg("chromium", ""), "/usr/bin/chromium-headless-shell",
  "/usr/bin/chromium"].filter(Boolean);

function skip(why) {
  console.log("spectator_test: skipped: " + why);
  process.exit(77);
}

if (!game || !bench) {
  console.error("usage: spectator_test.js --game PATH --bench PATH [--out PNG]");
  process.exit(2);
}
if (!pageBuilt) skip("the spectator page was not built (no tsc; scripts/deps.sh browser)");
const chromium = chromiumCandidates.find((p) => fs.existsSync(p));
if (!chromium) skip("no Chromium (scripts/deps.sh browser installs chromium-headless-shell)");
let WebSocket;
try {
  WebSocket = require("ws");
} catch (e) {
  skip("no `ws` module for Node (scripts/deps.sh browser installs node-ws; NODE_PATH=/usr/share/nodejs)");
}

// ---- processes, stopped by PID on every way out ---------------------------
//
// Chromium runs in a process group of its own (detached) and is stopped
// through it: Debian's /usr/bin/chromium-headless-shell is a shell script
// that does not exec, so the PID we get is the script's, and the browser
// and its helpers (zygote, GPU, renderer) are its descendants.

const children = []; // {name, proc, group}
let profile = null;

function cleanup() {
  for (const c of children.slice().reverse()) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      try {
        process.kill(c.group ? -c.proc.pid : c.proc.pid, "SIGKILL");
      } catch (e) {
        /* already gone */
      }
    }
  }
  if (profile) {
    fs.rmSync(profile, { recursive: true, force: true });
    profile = null;
  }
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
  process.on(sig, () => {
    console.error("spectator_test: " + sig);
    process.exit(1);
  });

function fail(why) {
  console.error("spectator_test: FAIL: " + why);
  process.exit(1);
}

const started = Date.now();
const deadline = setTimeout(() => fail("not done within " + DEADLINE_MS + " ms"), DEADLINE_MS);

function start(name, file, args, group = false) {
  const proc = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], detached: group });
  const c = { name, proc, group, stdout: "", stderr: "" };
  proc.stdout.on("data", (d) => (c.stdout += d));
  proc.stderr.on("data", (d) => (c.stderr += d));
  proc.on("error", (e) => fail(name + ": " + e.message));
  children.push(c);
  return c;
}

/** Resolves with the first match of 're' in c's stdout or stderr. */
function waitFor(c, stream, re) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = c[stream].match(re);
      if (m) {
        resolve(m);
        return true;
      }
      return false;
    };
    if (check()) return;
    const onData = () => {
      if (check()) c.proc[stream].off("data", onData);
    };
    c.proc[stream].on("data", onData);
    c.proc.on("exit", (code, sig) =>
      reject(new Error(c.name + " exited (" + (code ?? sig) + ") before printing " + re +
        ":\n" + c.stderr.slice(-2000))));
  });
}

/** SIGTERM (to its group if it has one), then SIGKILL after 'ms';
 * resolves with the exit code. */
function stop(c, ms) {
  const target = c.group ? -c.proc.pid : c.proc.pid;
  const kill = (sig) => {
    try {
      process.kill(target, sig);
    } catch (e) {
      /* already gone */
    }
  };
  return new Promise((resolve) => {
    const t = setTimeout(() => kill("SIGKILL"), ms);
    const done = (code) => {
      clearTimeout(t);
      if (c.group) kill("SIGKILL"); // helpers the browser left behind
      resolve(code);
    };
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) done(c.proc.exitCode);
    else {
      c.proc.on("exit", done);
      kill("SIGTERM");
    }
  });
}

// ---- the DevTools protocol -----------------------------------------------

function getJson(port, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: p }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    }).on("error", reject);
  });
}

class Cdp {
  constructor(url) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20 });
    this.next = 1;
    this.pending = new Map();
    this.ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      const p = m.id && this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(p.method + ": " + m.error.message));
      else p.resolve(m.result);
    });
    this.ws.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error("DevTools connection closed"));
      this.pending.clear();
    });
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
  }
  send(method, params = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  close() {
    this.ws.close();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the test ------------------------------------------------------------

async function main() {
  const g = start("ringport-game", game, ["--port", "0", "--ws-port", "0", "--metrics",
    "127.0.0.1:0", "--no-stats", "--max-sessions", "2000"]);
  const port = (await waitFor(g, "stdout", /^listening on 127\.0\.0\.1:(\d+)$/m))[1];
  await waitFor(g, "stdout", /^ws listening on 127\.0\.0\.1:(\d+)$/m);
  const mport = (await waitFor(g, "stdout", /^metrics on 127\.0\.0\.1:(\d+)$/m))[1];

  const bots = start("ringport-bench", bench, ["game", "--port", port, "--bots", String(BOTS),
    "--duration", "60", "--threads", "1"]);

  profile = fs.mkdtempSync(path.join(os.tmpdir(), "ringport-chromium-"));
  const chrome = start("chromium", chromium, ["--headless", "--no-sandbox", "--disable-gpu",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    "--user-data-dir=" + profile, "--window-size=1280,800", "about:blank"], true);
  const devtools = (await waitFor(chrome, "stderr", /DevTools listening on (ws:\/\/[^\s]+)/))[1];
  const dport = Number(new URL(devtools).port);

  // The page target Chromium opened (about:blank).
  let target = null;
  for (let i = 0; i < 50 && !target; i++) {
    const list = await getJson(dport, "/json/list");
    target = list.find((t) => t.type === "page");
    if (!target) await sleep(100);
  }
  if (!target) fail("Chromium has no page target");
  const cdp = new Cdp(target.webSocketDebuggerUrl);
  await cdp.open();
  await cdp.send("Page.enable");
  await cdp.send("Emulation.setDeviceMetricsOverride",
    { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false });
  const url = "http://127.0.0.1:" + mport + "/";
  const navigated = Date.now(); // the page's first draw comes after this
  await cdp.send("Page.navigate", { url });

  // Poll what the page shows until it shows enough players and an arena
  // (the same room) at a later tick than before.
  const firstTick = new Map(); // room -> tick first seen
  let shown = null, advanced = null;
  while (!advanced || shown.online < WANT_ONLINE) {
    await sleep(200);
    const r = await cdp.send("Runtime.evaluate",
      { expression: "JSON.stringify(window.spectator || null)", returnByValue: true });
    shown = JSON.parse(r.result.value || "null");
    if (!shown) continue;
    for (const [room, tick] of shown.arenas) {
      if (!firstTick.has(room)) firstTick.set(room, tick);
      else if (tick > firstTick.get(room) && !advanced)
        advanced = { room, from: firstTick.get(room), to: tick };
    }
  }
  // One more draw after the state that satisfied us, then the picture.
  const draws = shown.draws;
  for (let i = 0; i < 10; i++) {
    await sleep(100);
    const r = await cdp.send("Runtime.evaluate",
      { expression: "window.spectator.draws", returnByValue: true });
    if (r.result.value > draws) break;
  }
  // The page draws at most 5 times a second: draws are at least 200 ms
  // apart, all after 'navigated', so at most elapsed / 200 ms + 1 of them
  // (a bound a slow machine cannot break: it only draws fewer).
  const drawn = (await cdp.send("Runtime.evaluate",
    { expression: "window.spectator.draws", returnByValue: true })).result.value;
  const bound = Math.floor((Date.now() - navigated) / 200) + 1;
  if (drawn > bound) fail("the page drew " + drawn + " times, more than 5 a second (" + bound + ")");
  const shot = await cdp.send("Page.captureScreenshot", { format: "png" });
  fs.writeFileSync(out, Buffer.from(shot.data, "base64"));
  cdp.close();

  console.log("spectator_test: page at " + url + " showed " + shown.online +
    " players online (state #" + shown.seq + ", " + shown.states + " states, " +
    shown.draws + " draws), arena " + advanced.room + " tick " + advanced.from + " -> " +
    advanced.to + "; screenshot " + out + " (" + (Date.now() - started) + " ms)");

  await stop(chrome, 3000);
  await stop(bots, 3000);
  const code = await stop(g, 10000);
  const final = (g.stdout.match(/^final:.*$/m) || [""])[0];
  if (code !== 0) fail("ringport-game exited with " + code + "\n" + g.stderr.slice(-2000));
  if (!/sessions 0 players 0 names 0$/.test(final)) fail("ringport-game left something: " + final);
  clearTimeout(deadline);
  cleanup();
  process.exit(0);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
