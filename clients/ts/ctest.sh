#!/bin/sh
# CTest entry of the TypeScript client (clients/ts). The package is
# compiled once, into the build tree (never into the source tree, so build
# folders testing at once do not race), and each test runs a staged copy
# of its files against that build with `node --test`:
#
#   ctest.sh DIR build            tsc into DIR/dist (the fixture the
#                                 others require)
#   ctest.sh DIR unit             golden vectors, frames, the client
#                                 against a scripted fake WebSocket
#   ctest.sh DIR game GAME_BIN    against ringport-game over WebSocket
#   ctest.sh DIR browser GAME_BIN the same in headless Chromium, with the
#                                 browser's own WebSocket
#   ctest.sh DIR pack             `npm pack` of the package, installed
#                                 offline into an empty project that
#                                 imports it and type-checks against it
#
# Exits 77 (CTest's skip) with one line when node, tsc, npm (pack) or the
# ws module (game) is missing: scripts/deps.sh ts installs them.
set -eu
dir=$1
kind=$2
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/../.." && pwd)

skip() {
    echo "SKIP: $*"
    exit 77
}
command -v node >/dev/null 2>&1 || skip "node not found (scripts/deps.sh ts)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
    skip "node $(node --version) is older than 18"
tsc=$(command -v tsc || true)
[ -n "$tsc" ] || skip "tsc not found (Debian node-typescript: scripts/deps.sh ts)"
export NODE_PATH="${NODE_PATH:+$NODE_PATH:}/usr/share/nodejs"
export RINGPORT_GOLDEN="$root/proto/golden.txt"

case "$kind" in
build)
    rm -rf "$dir/dist"
    mkdir -p "$dir"
    cp "$src/package.json" "$src/README.md" "$dir/"
    exec "$tsc" -p "$src/tsconfig.json" --outDir "$dir/dist" ;;
esac
[ -f "$dir/dist/index.js" ] || { echo "no $dir/dist: the ts_client_build test did not run" >&2; exit 1; }

case "$kind" in
unit)
    rm -rf "$dir/unit" && mkdir -p "$dir/unit"
    cp "$src/test/golden.test.mjs" "$src/test/client.test.mjs" "$dir/unit/"
    exec node --test "$dir/unit/" ;;
game)
    node -e 'require("ws")' 2>/dev/null ||
        skip "the ws module is missing (Debian node-ws: scripts/deps.sh ts)"
    "$3" --help 2>&1 | grep -q -- --ws-port ||
        skip "this ringport-game has no WebSocket listener (--ws-port)"
    export RINGPORT_GAME=$3
    rm -rf "$dir/game" && mkdir -p "$dir/game"
    cp "$src/test/game.test.mjs" "$src/test/game-server.mjs" "$dir/game/"
    exec node --test "$dir/game/game.test.mjs" ;;
browser)
    node -e 'require("ws")' 2>/dev/null ||
        skip "the ws module is missing (Debian node-ws: scripts/deps.sh ts)"
    found=""
    for b in "${RINGPORT_CHROMIUM:-}" chromium-headless-shell chromium google-chrome; do
        [ -n "$b" ] && command -v "$b" >/dev/null 2>&1 && found=$b && break
    done
    [ -n "$found" ] || skip "no Chromium (Debian chromium-headless-shell)"
    "$3" --help 2>&1 | grep -q -- --ws-port ||
        skip "this ringport-game has no WebSocket listener (--ws-port)"
    export RINGPORT_GAME=$3
    rm -rf "$dir/browser" && mkdir -p "$dir/browser"
    cp "$src/test/browser.test.mjs" "$src/test/game-server.mjs" "$dir/browser/"
    exec node --test "$dir/browser/browser.test.mjs" ;;
pack)
    command -v npm >/dev/null 2>&1 || skip "npm not found"
    rm -rf "$dir/pack" && mkdir -p "$dir/pack/pkg" "$dir/pack/app"
    cp -r "$dir/package.json" "$dir/README.md" "$dir/dist" "$dir/pack/pkg/"
    # dist/ is built already: no prepack (tsc) here.
    (cd "$dir/pack/pkg" &&
        npm pack --silent --ignore-scripts --pack-destination .. >/dev/null)
    cd "$dir/pack/app"
    echo '{"name":"app","version":"1.0.0","private":true,"type":"module"}' >package.json
    npm install --offline --silent --no-audit --no-fund ../ringport-client-*.tgz
    # Its types, as a TypeScript project sees them with the default module
    # resolution ("node": "types" and typesVersions; "exports", which
    # node16 and bundler read, name the same files).
    cat >app.ts <<'TS'
import { RingportClient, type ServerMessage } from "ringport-client";
import { encodeFrame, type PvpState } from "ringport-client/protocol";
const c = new RingportClient({ url: "ws://127.0.0.1:1/", webSocket: () => { throw new Error("unused"); } });
c.on("message", (m: ServerMessage) => { if (m.type === "pvp_state") { const s: PvpState = m; void s.f[0].hp; } });
void encodeFrame({ type: "login", name: "alice" });
TS
    "$tsc" --strict --noEmit --target ES2020 --module ES2020 --lib ES2020,DOM \
        --moduleResolution node app.ts
    exec node --input-type=module -e '
        const m = await import("ringport-client");
        const p = await import("ringport-client/protocol");
        const f = p.encodeFrame({ type: "login", name: "alice" });
        if (typeof m.RingportClient !== "function" || m.typeName(1) !== "login" ||
            p.toJson(p.decode(1, f.subarray(4))) !== "{\"type\":\"login\",\"name\":\"alice\"}")
            throw new Error("the installed package does not work");
        console.log("ringport-client installs from its npm pack and imports");' ;;
*) echo "ctest.sh: unknown kind $kind" >&2; exit 2 ;;
esac
