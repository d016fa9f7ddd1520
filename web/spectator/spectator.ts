// The ringport-game spectator page (docs/game.md, "Spectators"): connects
// to the game's WebSocket listener, sends SPECTATE, and draws each
// SPECTATOR_STATE on a canvas: players online per content, the PVP arenas
// (positions and hit points), the dungeon runs in progress (their
// monsters' hit points) and messages per second. The server sends at most
// 5 states a second and the page draws at most 5 times a second. When the
// connection drops it reconnects with exponential back-off (0.25 s doubling
// to 8 s, with jitter), reset by the first state of a new connection.
//
// The WebSocket port comes from the query string (?ws=PORT) or from
// /spectator.json ({"ws_port": N}), which ringport-game serves next to
// this page. The codec is the generated one (proto/game.schema ->
// clients/ts/src/protocol.ts); nothing here knows the byte layout but the
// frame header (u16 length, u16 type).
//
// For tests and curious people, window.spectator holds what was last drawn
// (tests/browser/spectator_test.js polls it over the DevTools protocol).

import {
  decode,
  encodeFrame,
  ErrorCode,
  MsgType,
  SpectatorState,
} from "../../clients/ts/src/protocol";

// Game numbers the drawing scales by (examples/game/rules.h).
const ARENA_SIZE = 20; // PVP_ARENA: coordinates 0..20 on both axes
const PVP_HP = 100;
const MONSTER_HP = 50; // DUNGEON_MONSTER_HP
const DRAW_EVERY_MS = 200; // at most 5 draws a second
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 8000;
const HISTORY = 60; // msgs/s samples kept for the chart

/** What the page shows, as window.spectator. */
interface Shown {
  status: string; // "connecting", "live", "reconnecting in 1.0 s", ...
  url: string;
  connects: number; // WebSocket connections opened
  states: number; // SPECTATOR_STATEs received
  draws: number;
  seq: number;
  online: number; // lobby + pvp + dungeon
  arenas: Array<[number, number]>; // [room, tick] of each listed arena
  runs: number;
}

const shown: Shown = {
  status: "starting",
  url: "",
  connects: 0,
  states: 0,
  draws: 0,
  seq: 0,
  online: 0,
  arenas: [],
  runs: 0,
};
(window as unknown as { spectator: Shown }).spectator = shown;

const canvas = document.getElementById("view") as HTMLCanvasElement;
const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
let state: SpectatorState | null = null;
const history: Array<[number, number]> = []; // [in, out] per state
let lastDraw = 0;
let drawTimer: number | undefined;
let backoff = BACKOFF_MIN_MS;

// ---- connection ------------------------------------------------------------

async function wsUrl(): Promise<string> {
  const host = location.hostname || "127.0.0.1";
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const q = new URLSearchParams(location.search).get("ws");
  if (q) return scheme + host + ":" + Number(q) + "/";
  const r = await fetch("/spectator.json", { cache: "no-store" });
  if (!r.ok) throw new Error("/spectator.json: HTTP " + r.status);
  const j = (await r.json()) as { ws_port?: number };
  if (!j.ws_port) throw new Error("the game has no WebSocket listener");
  return scheme + host + ":" + j.ws_port + "/";
}

function retry(why: string): void {
  const wait = backoff * (0.75 + Math.random() * 0.5);
  backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  shown.status = why + ": reconnecting in " + (wait / 1000).toFixed(1) + " s";
  scheduleDraw();
  window.setTimeout(connect, wait);
}

async function connect(): Promise<void> {
  let url: string;
  try {
    url = await wsUrl();
  } catch (e) {
    retry(String(e));
    return;
  }
  shown.url = url;
  shown.status = "connecting to " + url;
  scheduleDraw();
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let ended = false;
  const end = (why: string) => {
    if (ended) return;
    ended = true;
    state = null;
    retry(why);
  };
  ws.onopen = () => {
    shown.connects++;
    shown.status = "waiting for the first state";
    ws.send(encodeFrame({ type: "spectate" }));
  };
  ws.onmessage = (ev: MessageEvent) => {
    if (!(ev.data instanceof ArrayBuffer)) return;
    let why: string | null;
    try {
      why = onFrames(new Uint8Array(ev.data));
    } catch (e) {
      why = "a bad message from the game (" + String(e) + ")"; // DecodeError
    }
    if (why) {
      ws.close();
      end(why);
    }
  };
  ws.onerror = () => end("connection error");
  ws.onclose = (ev: CloseEvent) => end("closed (" + ev.code + ")");
}

/** Handles the frames of one message; a reason to drop the connection, or
 * null. */
function onFrames(b: Uint8Array): string | null {
  for (let at = 0; at + 4 <= b.length; ) {
    const len = b[at] | (b[at + 1] << 8);
    const type = b[at + 2] | (b[at + 3] << 8);
    if (at + 4 + len > b.length) return "a frame cut short";
    const payload = b.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    if (type === MsgType.ERROR) {
      const m = decode(type, payload);
      if (m.type === "error" && m.code === ErrorCode.SPECTATORS_FULL)
        return "the game has all the spectators it takes";
      return "error " + (m.type === "error" ? m.code : "?") + " from the game";
    }
    if (type !== MsgType.SPECTATOR_STATE) continue;
    const m = decode(type, payload);
    if (m.type !== "spectator_state") continue;
    onState(m);
  }
  return null;
}

function onState(s: SpectatorState): void {
  state = s;
  backoff = BACKOFF_MIN_MS;
  shown.status = "live";
  shown.states++;
  shown.seq = s.seq;
  shown.online = s.lobby + s.pvp + s.dungeon;
  shown.arenas = s.arena.map((a) => [a.room, a.tick] as [number, number]);
  shown.runs = s.runs;
  history.push([s.msgs_in, s.msgs_out]);
  if (history.length > HISTORY) history.shift();
  scheduleDraw();
}

// ---- drawing ---------------------------------------------------------------

/** Draws now if the last draw is DRAW_EVERY_MS old, else once when it is. */
function scheduleDraw(): void {
  if (drawTimer !== undefined) return;
  const wait = Math.max(0, lastDraw + DRAW_EVERY_MS - performance.now());
  drawTimer = window.setTimeout(() => {
    drawTimer = undefined;
    lastDraw = performance.now();
    draw();
  }, wait);
}

const C = {
  bg: "#10141c",
  panel: "#1a2030",
  text: "#e6e9ef",
  dim: "#8a93a6",
  lobby: "#6cb6ff",
  pvp: "#ff7b72",
  dungeon: "#7ee787",
  side0: "#58a6ff",
  side1: "#ffa657",
  hpBack: "#30363d",
  hp: "#3fb950",
  hpLow: "#f85149",
};

function text(s: string, x: number, y: number, size = 14, color = C.text): void {
  ctx.font = size + "px system-ui, sans-serif";
  ctx.fillStyle = color;
  ctx.fillText(s, x, y);
}

function bar(x: number, y: number, w: number, h: number, frac: number, color: string): void {
  ctx.fillStyle = C.hpBack;
  ctx.fillRect(x, y, w, h);
  ctx.fillStyle = color;
  ctx.fillRect(x, y, Math.max(0, Math.min(1, frac)) * w, h);
}

function hpColor(frac: number): string {
  return frac > 0.3 ? C.hp : C.hpLow;
}

function draw(): void {
  shown.draws++;
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(640, canvas.clientWidth || window.innerWidth);
  const H = Math.max(480, canvas.clientHeight || window.innerHeight);
  if (canvas.width !== W * dpr || canvas.height !== H * dpr) {
    canvas.width = W * dpr;
    canvas.height = H * dpr;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = C.bg;
  ctx.fillRect(0, 0, W, H);
  text("ringport spectator", 20, 34, 22);
  text(shown.status + (shown.url ? "  ·  " + shown.url : ""), 230, 34, 14, C.dim);
  const s = state;
  if (!s) return;
  text("state #" + s.seq + "  ·  " + s.spectators + " watching", W - 260, 34, 14, C.dim);
  drawOnline(s, 20, 56, 360);
  drawRates(s, 400, 56, W - 420);
  const arenasH = Math.max(200, (H - 190) * 0.62);
  drawArenas(s, 20, 170, W - 40, arenasH);
  drawRuns(s, 20, 170 + arenasH + 16, W - 40, H - (170 + arenasH + 16) - 16);
}

function drawOnline(s: SpectatorState, x: number, y: number, w: number): void {
  const total = s.lobby + s.pvp + s.dungeon;
  text("players online: " + total, x, y + 16, 16);
  const rows: Array<[string, number, string]> = [
    ["lobby", s.lobby, C.lobby],
    ["pvp", s.pvp, C.pvp],
    ["dungeon", s.dungeon, C.dungeon],
  ];
  rows.forEach(([name, n, color], i) => {
    const ry = y + 30 + i * 24;
    text(name, x, ry + 13, 13, C.dim);
    bar(x + 70, ry, w - 130, 16, total ? n / total : 0, color);
    text(String(n), x + w - 50, ry + 13, 13);
  });
}

function drawRates(s: SpectatorState, x: number, y: number, w: number): void {
  text("messages/s  in " + s.msgs_in + "  ·  out " + s.msgs_out, x, y + 16, 16);
  const top = y + 28, h = 70;
  ctx.fillStyle = C.panel;
  ctx.fillRect(x, top, w, h);
  const max = Math.max(1, ...history.map(([i, o]) => Math.max(i, o)));
  for (const [k, color] of [[0, C.lobby], [1, C.pvp]] as Array<[number, string]>) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    history.forEach((v, i) => {
      const px = x + (i / (HISTORY - 1)) * w;
      const py = top + h - (v[k] / max) * (h - 6) - 3;
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
  }
}

function drawArenas(s: SpectatorState, x: number, y: number, w: number, h: number): void {
  text("PVP arenas: " + s.arenas + " fighting" +
       (s.arena.length < s.arenas ? ", the oldest " + s.arena.length + " shown" : ""),
       x, y + 14, 16);
  const n = s.arena.length;
  if (!n) return;
  // Oldest first, so an arena keeps its place while it lasts.
  const arenas = s.arena.slice().sort((a, b) => a.room - b.room);
  const top = y + 24;
  const cols = Math.max(1, Math.ceil(Math.sqrt((n * w) / (h - 24))));
  const rows = Math.ceil(n / cols);
  const tile = Math.min(w / cols, (h - 24) / rows) - 8;
  arenas.forEach((a, i) => {
    const tx = x + (i % cols) * (tile + 8), ty = top + Math.floor(i / cols) * (tile + 8);
    ctx.fillStyle = C.panel;
    ctx.fillRect(tx, ty, tile, tile);
    text("room " + a.room + " · t" + a.tick, tx + 4, ty + 13, 11, C.dim);
    const field = tile - 34, fx = tx + 4, fy = ty + 30;
    ctx.strokeStyle = C.hpBack;
    ctx.strokeRect(fx, fy, field, field);
    const fighters: Array<[number, number, number, string]> = [
      [a.x0, a.y0, a.hp0, C.side0],
      [a.x1, a.y1, a.hp1, C.side1],
    ];
    fighters.forEach(([fxv, fyv, hp, color], side) => {
      bar(tx + 4 + side * (tile / 2), ty + 18, tile / 2 - 8, 6, hp / PVP_HP, color);
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(fx + (fxv / ARENA_SIZE) * field, fy + (fyv / ARENA_SIZE) * field,
              Math.max(3, field / 24), 0, Math.PI * 2);
      ctx.fill();
    });
  });
}

function drawRuns(s: SpectatorState, x: number, y: number, w: number, h: number): void {
  text("dungeon runs: " + s.runs + " in progress" +
       (s.run.length < s.runs ? ", the oldest " + s.run.length + " shown" : ""),
       x, y + 14, 16);
  const colW = 300, rowH = 22;
  const perCol = Math.max(1, Math.floor((h - 24) / rowH));
  // Each listed run's monsters follow in monster_hp, in listing order.
  let at = 0;
  const runs = s.run.map((r) => {
    const hp = s.monster_hp.slice(at, at + r.monsters);
    at += r.monsters;
    return { r, hp };
  });
  runs.sort((a, b) => a.r.id - b.r.id); // oldest first, as the arenas
  runs.forEach(({ r, hp }, i) => {
    const col = Math.floor(i / perCol);
    const rx = x + col * colW, ry = y + 24 + (i % perCol) * rowH;
    if (rx + colW > x + w) return;
    text("#" + r.id + " · " + r.players + "p", rx, ry + 13, 12, C.dim);
    hp.forEach((v, k) => {
      const f = v / MONSTER_HP;
      bar(rx + 84 + k * 26, ry + 3, 22, 10, f, hpColor(f));
    });
  });
}

window.addEventListener("resize", scheduleDraw);
scheduleDraw();
void connect();
