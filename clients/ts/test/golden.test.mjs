// The golden byte vectors (proto/golden.txt, quoted by docs/protocol.md)
// against the generated TypeScript codec, as tests/unit/game/
// test_game_golden.c holds the C one to the same file: each frame decodes
// to the stated message (in the one-line JSON form both languages write)
// and the message, built from that JSON, encodes to the same bytes; each
// refused frame gets the stated DecodeError code; every message type has
// a vector.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import {
  decode,
  encodeFrame,
  toJson,
  fromJson,
  typeName,
  DecodeError,
  MsgType,
} from "../dist/protocol.js";

// CTest runs a staged copy of the tests and passes the file's path.
const goldenPath =
  process.env.RINGPORT_GOLDEN ??
  fileURLToPath(new URL("../../../proto/golden.txt", import.meta.url));

function rows() {
  const out = [];
  for (const line of readFileSync(goldenPath, "utf8").split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const m = /^(\S+)\s+([0-9a-f ]+?)\s+(\{.*\}|![A-Z]+)\s*$/.exec(line);
    assert.ok(m, "bad golden line: " + line);
    const bytes = Uint8Array.from(
      m[2].trim().split(/\s+/).map((h) => parseInt(h, 16)),
    );
    out.push({ name: m[1], bytes, expect: m[3] });
  }
  assert.ok(out.length > 0);
  return out;
}

const le16 = (b, at) => b[at] | (b[at + 1] << 8);

for (const row of rows()) {
  test("golden " + row.name, () => {
    const type = le16(row.bytes, 2);
    assert.equal(le16(row.bytes, 0), row.bytes.length - 4);
    const payload = row.bytes.subarray(4);
    if (row.expect.startsWith("!")) {
      assert.throws(
        () => decode(type, payload),
        (e) => e instanceof DecodeError && e.code === row.expect.slice(1),
      );
      return;
    }
    const msg = decode(type, payload);
    assert.equal(toJson(msg), row.expect);
    assert.deepEqual(encodeFrame(fromJson(row.expect)), row.bytes);
    assert.deepEqual(encodeFrame(msg), row.bytes);
  });
}

test("every message type has a golden vector", () => {
  const covered = new Set(
    rows()
      .filter((r) => r.expect.startsWith("{"))
      .map((r) => le16(r.bytes, 2)),
  );
  for (const [name, number] of Object.entries(MsgType)) {
    assert.ok(covered.has(number), "no golden vector for " + name);
    assert.equal(typeName(number), name.toLowerCase());
  }
});

test("truncated payloads are EBADMSG, never read past", () => {
  for (const row of rows()) {
    if (!row.expect.startsWith("{")) continue;
    const type = le16(row.bytes, 2);
    for (let cut = 0; cut < row.bytes.length - 4; cut++) {
      assert.throws(
        () => decode(type, row.bytes.slice(4, 4 + cut)),
        (e) => e instanceof DecodeError && e.code === "EBADMSG",
      );
    }
  }
});

test("the encoder keeps the schema limits", () => {
  assert.throws(() => encodeFrame({ type: "login", name: "a".repeat(17) }), RangeError);
  assert.throws(
    () => encodeFrame({ type: "dungeon_state", id: 1, tick: 1, mhp: new Array(9).fill(0), php: [] }),
    RangeError,
  );
  assert.throws(() => encodeFrame({ type: "pvp_move", dx: 200, dy: 0 }), RangeError);
  assert.throws(() => encodeFrame({ type: "match_start", room: 1, side: 0, opponent: "x", f: [] }), RangeError);
  // A range is the decoder's business: the encoder builds bad input.
  const bad = encodeFrame({ type: "pvp_move", dx: 2, dy: 0 });
  assert.throws(
    () => decode(5, bad.subarray(4)),
    (e) => e.code === "ERANGE" && e.partial.dx === 2,
  );
});
