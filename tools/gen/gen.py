#!/usr/bin/env python3
"""The message generator of ringport-game: one schema, two languages.

Reads proto/game.schema (its format is in the file's header and in
docs/protocol.md, "The message schema and the generator"; schema.py reads
it, gen_c.py and gen_ts.py write the two languages) and writes:

  examples/game/gen/protocol_gen.h   C types, encoders, decoders (the
  examples/game/gen/protocol_gen.c   server, the bots and the tests)
  clients/ts/src/protocol.ts         the same in TypeScript (clients/ts)
  docs/protocol.md                   the golden-vector table, between the
                                     "golden:begin" and "golden:end"
                                     markers, quoted from proto/golden.txt

    gen.py            regenerate in place (make gen)
    gen.py --check    generate into a temporary folder and compare: exit 1
                      naming each stale file (make check-gen)

Python 3 standard library only, so any build machine runs it; the output
is a pure function of the schema and golden file (no dates, no paths), so
a check on another machine gives the same bytes.
"""

import argparse
import os
import re
import sys
import tempfile

# No __pycache__ beside the sources: a generator run leaves the tree as it
# found it, but for the files it writes.
sys.dont_write_bytecode = True

from gen_c import gen_c_header, gen_c_source  # noqa: E402
from gen_ts import gen_ts  # noqa: E402
from schema import HEADER, SchemaError, parse_schema  # noqa: E402

# ---- golden vectors ------------------------------------------------------


def parse_golden(text):
    """[(name, hex bytes, expectation)], expectation a JSON line or
    '!EBADMSG'-like; name is the row's label."""
    rows = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\S+)\s+([0-9a-f ]+?)\s+(\{.*\}|![A-Z]+)", line)
        if not m:
            raise SchemaError("proto/golden.txt:%d: not NAME HEX EXPECT"
                              % lineno)
        rows.append((m.group(1), " ".join(m.group(2).split()), m.group(3)))
    return rows


def golden_doc(rows):
    o = ["<!-- golden:begin (%s) -->" % HEADER.replace(
        "proto/game.schema", "proto/golden.txt"), "",
        "| vector | frame bytes (hex) | decodes to |",
        "| --- | --- | --- |"]
    for name, hexes, expect in rows:
        e = expect.replace("|", "\\|")
        if expect.startswith("!"):
            e = "-%s" % expect[1:]
        o.append("| %s | `%s` | `%s` |" % (name, hexes, e))
    o += ["", "<!-- golden:end -->"]
    return "\n".join(o)


def gen_doc(old, rows):
    begin = old.find("<!-- golden:begin")
    end = old.find("<!-- golden:end -->")
    if begin < 0 or end < begin:
        raise SchemaError("docs/protocol.md: no golden:begin/end markers")
    end += len("<!-- golden:end -->")
    return old[:begin] + golden_doc(rows) + old[end:]


# ---- main ----------------------------------------------------------------


OUTPUTS = [
    "examples/game/gen/protocol_gen.h",
    "examples/game/gen/protocol_gen.c",
    "clients/ts/src/protocol.ts",
    "docs/protocol.md",
]


def generate(root):
    with open(os.path.join(root, "proto/game.schema"), encoding="utf-8") as f:
        schema = parse_schema(f.read())
    with open(os.path.join(root, "proto/golden.txt"), encoding="utf-8") as f:
        rows = parse_golden(f.read())
    with open(os.path.join(root, "docs/protocol.md"), encoding="utf-8") as f:
        doc = f.read()
    ts = gen_ts(schema)
    return {
        OUTPUTS[0]: gen_c_header(schema),
        OUTPUTS[1]: gen_c_source(schema),
        OUTPUTS[2]: ts,
        OUTPUTS[3]: gen_doc(doc, rows),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--check", action="store_true",
                    help="fail, naming each stale file, instead of writing")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    try:
        files = generate(root)
    except (SchemaError, OSError) as e:
        print("gen.py: %s" % e, file=sys.stderr)
        return 2
    if args.check:
        stale = []
        with tempfile.TemporaryDirectory(prefix="ringport-gen-") as tmp:
            for rel, text in files.items():
                fresh = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(fresh), exist_ok=True)
                with open(fresh, "w", encoding="utf-8") as f:
                    f.write(text)
                try:
                    with open(os.path.join(root, rel), encoding="utf-8") as f:
                        same = f.read() == text
                except OSError:
                    same = False
                if not same:
                    stale.append(rel)
        for rel in stale:
            print("gen.py: %s is stale: run `make gen` (tools/gen/gen.py "
                  "from proto/game.schema, proto/golden.txt)" % rel,
                  file=sys.stderr)
        return 1 if stale else 0
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except OSError:
            pass
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print("gen.py: wrote %s" % rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
