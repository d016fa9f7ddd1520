#!/bin/sh
# CTest entry of the TypeScript client (clients/ts): compiles it with tsc
# into a folder of the build tree (never into the source tree, so build
# folders testing at once do not race), stages the tests beside it, and
# runs them with `node --test`.
#
#   ctest.sh STAGE_DIR unit            golden vectors, frames, the client
#                                      against a scripted fake WebSocket
#   ctest.sh STAGE_DIR game GAME_BIN   against ringport-game over WebSocket
#   ctest.sh STAGE_DIR pack            `npm pack` of a copy of the package,
#                                      installed offline into an empty
#                                      project, which imports it
#
# Exits 77 (CTest's skip) with one line when node, tsc or (game) the ws
# module is missing: scripts/deps.sh ts installs them.
set -eu
stage=$1
kind=$2
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/../.." && pwd)

command -v node >/dev/null 2>&1 || { echo "SKIP: node not found (scripts/deps.sh ts)"; exit 77; }
tsc=$(command -v tsc || true)
[ -n "$tsc" ] || tsc=$root/clients/ts/node_modules/.bin/tsc
[ -x "$tsc" ] || { echo "SKIP: tsc not found (Debian node-typescript: scripts/deps.sh ts)"; exit 77; }
node -e 'const [a]=process.versions.node.split(".");process.exit(+a>=18?0:1)' ||
    { echo "SKIP: node $(node --version) is older than 18"; exit 77; }
export NODE_PATH="${NODE_PATH:+$NODE_PATH:}/usr/share/nodejs"
if [ "$kind" = game ]; then
    node -e 'require("ws")' 2>/dev/null ||
        { echo "SKIP: the ws module is missing (Debian node-ws: scripts/deps.sh ts)"; exit 77; }
    export RINGPORT_GAME=$3
    "$3" --help 2>&1 | grep -q -- --ws-port ||
        { echo "SKIP: this ringport-game has no WebSocket listener (--ws-port)"; exit 77; }
fi

rm -rf "$stage"
mkdir -p "$stage/test"
if [ "$kind" = pack ]; then
    command -v npm >/dev/null 2>&1 || { echo "SKIP: npm not found"; exit 77; }
    mkdir -p "$stage/pkg" "$stage/app"
    cp -r "$src/package.json" "$src/tsconfig.json" "$src/README.md" "$src/src" "$stage/pkg/"
    (cd "$stage/pkg" && npm pack --silent --pack-destination "$stage" >/dev/null)
    cd "$stage/app"
    echo '{"name":"app","version":"1.0.0","private":true,"type":"module"}' >package.json
    npm install --offline --silent --no-audit --no-fund "$stage"/ringport-client-*.tgz
    exec node --input-type=module -e '
        const m = await import("ringport-client");
        const p = await import("ringport-client/protocol");
        const f = p.encodeFrame({ type: "login", name: "alice" });
        if (typeof m.RingportClient !== "function" || m.typeName(1) !== "login" ||
            p.toJson(p.decode(1, f.subarray(4))) !== "{\"type\":\"login\",\"name\":\"alice\"}")
            throw new Error("the installed package does not work");
        console.log("ringport-client installs from its npm pack and imports");'
fi
cp "$src/package.json" "$stage/"
"$tsc" -p "$src/tsconfig.json" --outDir "$stage/dist"
export RINGPORT_GOLDEN="$root/proto/golden.txt"
case "$kind" in
unit)
    cp "$src/test/golden.test.mjs" "$src/test/client.test.mjs" "$stage/test/"
    exec node --test "$stage/test/" ;;
game)
    cp "$src/test/game.test.mjs" "$src/test/game-server.mjs" "$stage/test/"
    exec node --test "$stage/test/game.test.mjs" ;;
*) echo "ctest.sh: unknown kind $kind" >&2; exit 2 ;;
esac
