#!/usr/bin/env python3
"""Tests of the generator itself (CTest gen_selftest; the generated code is
tested by test_game_golden and ts_client_unit): schema mistakes are
refused with their line, --check names exactly the stale file, a schema
with every type generates C that compiles warning-free, and the output
does not depend on the run.

    python3 tools/gen/test_gen.py
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen  # noqa: E402
from gen_c import gen_c_header, gen_c_source  # noqa: E402
from gen_ts import gen_ts  # noqa: E402
from schema import SchemaError, parse_schema  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

EVERY_TYPE = """
prefix zz
const MAX = 4
enum color COLOR {
    RED = 1  # a comment
    BLUE = 2
}
struct point {
    x: i16
    y: u64
}
message PING = 1 to server {
    a: u8 in 1..MAX
    b: i8 in -1..1
    c: u16
    d: u32 below c
    e: u64
    s: str(MAX)
    p: point[2]
    n: u16[cnt: u8 max MAX]
}
message PONG = 2 to client flat {
    v: u32
}
"""


def parse_error(text):
    try:
        parse_schema(text)
    except SchemaError as e:
        return str(e)
    return None


class SchemaMistakes(unittest.TestCase):
    def test_each_is_refused_with_its_line(self):
        base = "prefix zz\nmessage A = 1 to server {\n    a: u8\n}\n"
        cases = [
            (base + "message B = 1 to client {\n}\n", "type 1"),
            (base.replace("a: u8", "a: u24"), ":3: unknown type"),
            (base.replace("a: u8", "a: u8 below zz"), "below an unknown"),
            (base.replace("a: u8", "a: str(NOPE)"), ":3: unknown constant NOPE"),
            (base.replace("{\n    a: u8", "flat {\n    a: u8\n    b: u8"),
             "flat wants exactly one field"),
            (base.replace("a: u8", "a: u8\n    a: u16"), "a field name twice"),
            (base.replace("= 1 to", "= 65280 to"), "out of 1..0xFEFF"),
            (base[:-2], "not closed"),
            (base + "messages X\n", ":5: unknown line"),
        ]
        for text, want in cases:
            err = parse_error(text)
            self.assertIsNotNone(err, text)
            self.assertIn(want, err)

    def test_a_shared_c_member_needs_one_shape(self):
        err = parse_error("prefix zz\n"
                          "message A = 1 to server c=m flat {\n    a: u8\n}\n"
                          "message B = 2 to client c=m flat {\n    b: u16\n}\n")
        self.assertIn("shared with another shape", err)


class EveryType(unittest.TestCase):
    def test_c_compiles_without_warnings(self):
        s = parse_schema(EVERY_TYPE)
        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("no C compiler")
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "protocol_gen.h"), "w") as f:
                f.write(gen_c_header(s))
            with open(os.path.join(tmp, "protocol_gen.c"), "w") as f:
                f.write(gen_c_source(s))
            r = subprocess.run(
                [cc, "-std=c11", "-Wall", "-Wextra", "-Wshadow",
                 "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wformat=2",
                 "-Wvla", "-Werror", "-c", "-o", os.devnull,
                 os.path.join(tmp, "protocol_gen.c")],
                capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_typescript_types(self):
        ts = gen_ts(parse_schema(EVERY_TYPE))
        self.assertIn("e: bigint;", ts)
        self.assertIn("p: Point[];", ts)
        self.assertIn("n: number[];", ts)
        self.assertIn('export type ClientMessage =\n  | Ping;', ts)
        self.assertIn("d < c", ts)  # `below` another field
        tsc = shutil.which("tsc")
        if not tsc:
            self.skipTest("no tsc")
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "protocol.ts")
            with open(src, "w") as f:
                f.write(ts)
            r = subprocess.run(
                [tsc, "--noEmit", "--strict", "--noUnusedLocals",
                 "--noUnusedParameters", "--noImplicitReturns",
                 "--target", "ES2020", "--lib", "ES2020,DOM",
                 src], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class Check(unittest.TestCase):
    def copy_root(self, tmp):
        for rel in ["proto/game.schema", "proto/golden.txt"] + gen.OUTPUTS:
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            shutil.copy(os.path.join(ROOT, rel), os.path.join(tmp, rel))

    def run_gen(self, *args):
        err = io.StringIO()
        old = sys.argv
        sys.argv = ["gen.py"] + list(args)
        try:
            with redirect_stderr(err), redirect_stdout(io.StringIO()):
                rc = gen.main()
        finally:
            sys.argv = old
        return rc, err.getvalue()

    def test_names_exactly_the_stale_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.copy_root(tmp)
            self.assertEqual(self.run_gen("--root", tmp, "--check"), (0, ""))
            path = os.path.join(tmp, "clients/ts/src/protocol.ts")
            with open(path, "a") as f:
                f.write("// edited by hand\n")
            rc, err = self.run_gen("--root", tmp, "--check")
            self.assertEqual(rc, 1)
            self.assertIn("clients/ts/src/protocol.ts is stale", err)
            self.assertNotIn("protocol_gen", err)
            # A golden line changed: the doc's table is stale.
            with open(os.path.join(tmp, "proto/golden.txt"), "a") as f:
                f.write("extra 00 00 03 00  {\"type\":\"pvp_queue\"}\n")
            rc, err = self.run_gen("--root", tmp, "--check")
            self.assertIn("docs/protocol.md is stale", err)
            # Regenerating makes it fresh again.
            self.assertEqual(self.run_gen("--root", tmp)[0], 0)
            self.assertEqual(self.run_gen("--root", tmp, "--check"), (0, ""))

    def test_output_is_a_function_of_the_inputs(self):
        self.assertEqual(gen.generate(ROOT), gen.generate(ROOT))


if __name__ == "__main__":
    unittest.main()
