// Starts ringport-game for a test: TCP and WebSocket listeners on ephemeral
// ports (--port 0 --ws-port 0), read from its first stdout lines
// ("listening on ADDR:PORT", then "ws listening on ADDR:PORT"), stopped by
// its PID with SIGTERM. The binary is $RINGPORT_GAME (CTest passes it),
// else the one in the repository's build/ folder.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

// `ws` is a CommonJS module found through NODE_PATH (Debian node-ws:
// /usr/share/nodejs), which ES module imports do not read: require it.
const require = createRequire(import.meta.url);

/** The `ws` module's WebSocket, or null when it is not installed. */
export function loadWs() {
  try {
    return require("ws");
  } catch {
    return null;
  }
}

export function gameBinary() {
  if (process.env.RINGPORT_GAME) return process.env.RINGPORT_GAME;
  const p = fileURLToPath(new URL("../../../build/examples/game/ringport-game", import.meta.url));
  return existsSync(p) ? p : null;
}

/**
 * { port, wsPort, wsUrl, stop() }, on the ports asked (0: ephemeral).
 * Rejects when the game exits first or prints no "ws listening" line
 * within 10 s (a binary without --ws-port).
 */
export function startGame({ port = 0, wsPort = 0 } = {}) {
  const bin = gameBinary();
  if (!bin) return Promise.reject(new Error("no ringport-game binary (set RINGPORT_GAME)"));
  const args = ["--port", String(port), "--ws-port", String(wsPort), "--no-stats"];
  if (process.env.RINGPORT_BACKEND) args.push("--backend", process.env.RINGPORT_BACKEND);
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, sig })));
  return new Promise((resolve, reject) => {
    let out = "";
    let port = 0;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("ringport-game printed no ws listening line; stderr: " + stderr));
    }, 10000);
    exited.then(({ code, sig }) => {
      clearTimeout(timer);
      reject(new Error("ringport-game exited (" + (code ?? sig) + "): " + stderr));
    });
    child.stdout.on("data", (d) => {
      out += d;
      let m = /^listening on (.+):(\d+)$/m.exec(out);
      if (m) port = Number(m[2]);
      m = /^ws listening on (.+):(\d+)$/m.exec(out);
      if (!m || !port) return;
      clearTimeout(timer);
      const host = m[1].startsWith("[") || !m[1].includes(":") ? m[1] : "[" + m[1] + "]";
      const wsPort = Number(m[2]);
      resolve({
        port,
        wsPort,
        wsUrl: "ws://" + host + ":" + wsPort + "/",
        pid: child.pid,
        /** SIGTERM, then the exit status (a graceful stop exits 0). */
        async stop() {
          process.kill(child.pid, "SIGTERM");
          const r = await exited;
          return r.code;
        },
      });
    });
  });
}
