"""The TypeScript emitter of tools/gen/gen.py: clients/ts/src/protocol.ts.

The same messages, checks and JSON form as the C side (gen_c.py), for the
TypeScript client: interfaces per message, a Reader/Writer pair over
DataView, decode() throwing DecodeError with the C decoder's three results.
"""

from schema import HEADER, INTS, camel, int_range


# ---- TypeScript ----------------------------------------------------------


def ts_type(schema, f):
    if f.kind == "int":
        return "bigint" if f.type == "u64" else "number"
    if f.kind == "str":
        return "string"
    item = ("bigint" if f.type == "u64" else "number") if f.type in INTS \
        else camel(f.type, True)
    return item + "[]"


def ts_iname(msg):
    return camel(msg.lname, True)


def gen_ts(schema):
    o = ["// %s" % HEADER]
    o.append("""//
// The game messages of ringport-game in TypeScript: type numbers, codes,
// limits, one interface per message, and the encoder, decoder and JSON
// form, byte for byte those of the C side (examples/game/gen/). A message
// is a plain object whose `type` is its protocol name ("login_ok"), with
// the schema's field names; counted arrays are plain arrays (their count
// is the array's length), u64 fields are bigint.
//
// decode() judges a payload as the C decoder does and throws a
// DecodeError whose `code` is ENOMSG (type unknown), EBADMSG (wrong
// length, a count over its array) or ERANGE (a field out of its wire
// range; `partial` holds the message as read).
""")
    for name, value, text, comment in schema.consts:
        if comment:
            o.append("/** %s */" % comment)
        o.append("export const %s = %s;" % (name, text))
    o.append("")
    for name, prefix, tsname, values in schema.enums:
        o.append("export const %s = {" % tsname)
        for vname, value, comment in values:
            o.append("  %s: %d,%s" % (vname, value,
                                      " // " + comment if comment else ""))
        o.append("} as const;")
        o.append("export type %s = (typeof %s)[keyof typeof %s];" %
                 (tsname, tsname, tsname))
        o.append("/** The name of a %s value (\"%s\"), \"unknown\" otherwise. */"
                 % (name, values[0][0].lower()))
        o.append("export function %sName(code: number): string {" % camel(name))
        o.append("  switch (code) {")
        for vname, value, _ in values:
            o.append('    case %d: return "%s";' % (value, vname.lower()))
        o.append('  }\n  return "unknown";\n}\n')

    o.append("/** The frame type of each message. */")
    o.append("export const MsgType = {")
    for m in schema.messages:
        o.append("  %s: %d," % (m.name, m.number))
    o.append("} as const;\n")

    for name, fields in schema.structs.items():
        o.append("export interface %s {" % camel(name, True))
        for f in fields:
            o.append("  %s: %s;" % (f.name, ts_type(schema, f)))
        o.append("}\n")
    for m in schema.messages:
        doc = "%s (%d, %s)%s" % (m.name, m.number,
                                 "client -> server" if m.to == "server"
                                 else "server -> client",
                                 ": " + m.comment if m.comment else "")
        o.append("/** %s */" % doc)
        o.append("export interface %s {" % ts_iname(m))
        o.append('  type: "%s";' % m.lname)
        for f in m.fields:
            o.append("  %s: %s;%s" % (f.name, ts_type(schema, f),
                                      " // " + f.comment if f.comment else ""))
        o.append("}\n")
    for to, tname in (("server", "ClientMessage"), ("client", "ServerMessage")):
        names = [ts_iname(m) for m in schema.messages if m.to == to]
        o.append("/** What a %s sends. */" % ("client" if to == "server"
                                              else "server"))
        o.append("export type %s =\n  | %s;\n" % (tname, "\n  | ".join(names)))
    o.append("export type Message = ClientMessage | ServerMessage;")
    o.append('export type MessageName = Message["type"];')
    o.append("/** The message of one name: MessageOf<\"login_ok\"> is LoginOk. */")
    o.append("export type MessageOf<T extends MessageName> = "
             "Extract<Message, { type: T }>;\n")

    o.append("const NUMBERS: Record<MessageName, number> = {")
    for m in schema.messages:
        o.append("  %s: %d," % (m.lname, m.number))
    o.append("};\n")
    o.append("/** The frame type of a message name. */")
    o.append("export function typeNumber(name: MessageName): number {\n"
             "  return NUMBERS[name];\n}\n")
    o.append("/** \"login\", \"pvp_state\", ...; \"unknown\" otherwise. */")
    o.append("export function typeName(type: number): string {\n  switch (type) {")
    for m in schema.messages:
        o.append('    case %d: return "%s";' % (m.number, m.lname))
    o.append('  }\n  return "unknown";\n}\n')
    o.append("/** True for the types a client may send. */")
    o.append("export function isClientType(type: number): boolean {\n"
             "  switch (type) {")
    for m in schema.messages:
        if m.to == "server":
            o.append("    case %d:" % m.number)
    o.append("      return true;\n  }\n  return false;\n}\n")

    o.append(TS_RUNTIME.replace(
        "const utf8Encoder",
        TS_JSON_STRING.strip("\n") + "\n\nconst utf8Encoder", 1))

    # decode
    o.append("/** Decodes the payload of a frame of `type`; throws DecodeError. */")
    o.append("export function decode(type: number, payload: Uint8Array): "
             "Message {")
    o.append("  const r = new Reader(payload);")
    o.append("  let m: Message;")
    o.append("  let rangeOk = true;")
    o.append("  switch (type) {")
    for msg in schema.messages:
        o.append("    case %d: {" % msg.number)
        vars_ = []
        for f in msg.fields:
            v = ts_read(schema, f)
            o.append("      const %s = %s;" % (camel(f.name), v[0]))
            o += ["      " + s for s in v[1]]
            vars_.append(f)
        props = ['type: "%s"' % msg.lname] + [
            "%s: %s" % (f.name, camel(f.name)) if f.name != camel(f.name)
            else f.name for f in vars_]
        o.append("      m = { %s };" % ", ".join(props))
        conds = ts_range_checks(schema, msg)
        if conds:
            o.append("      rangeOk = " + " &&\n        ".join(conds) + ";")
        o.append("      break;\n    }")
    o.append('    default:\n      throw new DecodeError("ENOMSG", type);')
    o.append("  }")
    o.append('  if (r.failed || r.pos !== payload.length) '
             'throw new DecodeError("EBADMSG", type);')
    o.append('  if (!rangeOk) throw new DecodeError("ERANGE", type, m);')
    o.append("  return m;\n}\n")

    # encode
    o.append("/**\n * Encodes a message as a payload. Throws RangeError for a "
             "string or array\n * over its schema limit, an integer that does "
             "not fit its field, or an\n * unknown type (ranges are not checked, "
             "as in C).\n */")
    o.append("export function encode(m: Message): Uint8Array {")
    o.append("  const w = new Writer();")
    o.append("  switch (m.type) {")
    for msg in schema.messages:
        o.append('    case "%s":' % msg.lname)
        for f in msg.fields:
            o += ["      " + s for s in ts_write(schema, f, "m." + f.name)]
        o.append("      break;")
    o.append("    default:")
    o.append("      throw new RangeError(\"unknown message type \" + "
             "String((m as { type: unknown }).type));")
    o.append("  }\n  return w.bytes();\n}\n")
    o.append("""/** The frame (u16 length, u16 type, payload) of a message. */
export function encodeFrame(m: Message): Uint8Array {
  const payload = encode(m);
  const type = typeNumber(m.type);
  if (payload.length > 0xffff) throw new RangeError("payload over 65535 bytes");
  const out = new Uint8Array(4 + payload.length);
  out[0] = payload.length & 0xff;
  out[1] = payload.length >> 8;
  out[2] = type & 0xff;
  out[3] = type >> 8;
  out.set(payload, 4);
  return out;
}
""")
    # JSON
    o.append("/**\n * One line of JSON, keys in schema order: the form of "
             "proto/golden.txt and\n * of the C side's gm_to_json.\n */")
    o.append("export function toJson(m: Message): string {")
    o.append("  switch (m.type) {")
    for msg in schema.messages:
        o.append('    case "%s":' % msg.lname)
        parts = ['"{\\"type\\":\\"%s\\""' % msg.lname]
        for f in msg.fields:
            parts.append('",\\"%s\\":" + %s' % (f.name,
                                               ts_json(schema, f, "m." + f.name)))
        parts.append('"}"')
        o.append("      return (\n        " + " +\n        ".join(parts) +
                 "\n      );")
    o.append("  }\n  throw new RangeError(\"unknown message type\");\n}\n")
    o.append("""/** The message a toJson line describes (u64 fields become bigint). */
export function fromJson(text: string): Message {
  const o = JSON.parse(text) as Record<string, unknown> & { type: MessageName };
  if (!(o.type in NUMBERS)) throw new RangeError("unknown message type");
  for (const k of U64_FIELDS[o.type] ?? []) o[k] = BigInt(o[k] as number);
  return o as unknown as Message;
}""")
    u64 = {}
    for msg in schema.messages:
        names = [f.name for f in msg.fields
                 if f.kind == "int" and f.type == "u64"]
        if names:
            u64[msg.lname] = names
    o.append("\nconst U64_FIELDS: Partial<Record<MessageName, string[]>> = {")
    for k, v in u64.items():
        o.append("  %s: [%s]," % (k, ", ".join('"%s"' % n for n in v)))
    o.append("};")
    return "\n".join(o) + "\n"


TS_RUNTIME = """export type DecodeErrorCode = "ENOMSG" | "EBADMSG" | "ERANGE";

/** Why decode() refused a payload (the C decoder's -ENOMSG, -EBADMSG,
 * -ERANGE). */
export class DecodeError extends Error {
  constructor(
    readonly code: DecodeErrorCode,
    readonly msgType: number,
    readonly partial?: Message,
  ) {
    super(code + " (type " + msgType + ")");
    this.name = "DecodeError";
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

// A cursor over a payload with a sticky failure flag: a run of fields is
// read and checked once, never past the end.
class Reader {
  pos = 0;
  failed = false;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private take(n: number): number {
    if (this.failed || this.buf.length - this.pos < n) {
      this.failed = true;
      this.pos = this.buf.length;
      return -1;
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.view.getUint8(at);
  }
  i8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.view.getInt8(at);
  }
  u16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getUint16(at, true);
  }
  i16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getInt16(at, true);
  }
  u32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getUint32(at, true);
  }
  u64(): bigint {
    const at = this.take(8);
    return at < 0 ? 0n : this.view.getBigUint64(at, true);
  }
  str(): string {
    const n = this.u16();
    const at = this.take(n);
    return at < 0 ? "" : utf8Decoder.decode(this.buf.subarray(at, at + n));
  }
}

// A growing payload; each put checks its value fits the field.
class Writer {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      bigger.set(this.buf);
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  private static check(v: number, lo: number, hi: number): number {
    if (!Number.isInteger(v) || v < lo || v > hi)
      throw new RangeError(v + " is not an integer in " + lo + ".." + hi);
    return v;
  }

  u8(v: number): void {
    this.view.setUint8(this.room(1), Writer.check(v, 0, 0xff));
  }
  i8(v: number): void {
    this.view.setInt8(this.room(1), Writer.check(v, -0x80, 0x7f));
  }
  u16(v: number): void {
    this.view.setUint16(this.room(2), Writer.check(v, 0, 0xffff), true);
  }
  i16(v: number): void {
    this.view.setInt16(this.room(2), Writer.check(v, -0x8000, 0x7fff), true);
  }
  u32(v: number): void {
    this.view.setUint32(this.room(4), Writer.check(v, 0, 0xffffffff), true);
  }
  u64(v: bigint): void {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError("u64 out of range");
    this.view.setBigUint64(this.room(8), v, true);
  }
  str(s: string, max: number): void {
    const b = utf8Encoder.encode(s);
    if (b.length > max) throw new RangeError("string over " + max + " bytes");
    this.u16(b.length);
    this.buf.set(b, this.room(b.length));
  }
  count(n: number, max: number): void {
    if (n > max) throw new RangeError("array over " + max + " items");
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
"""


def ts_read_item(schema, t):
    if t in INTS:
        return "r.%s()" % t
    fields = schema.structs[t]
    return "({ %s })" % ", ".join("%s: r.%s()" % (f.name, f.type)
                                  for f in fields)


def ts_read(schema, f):
    """(expression, statements after) reading field f."""
    if f.kind == "int":
        return "r.%s()" % f.type, []
    if f.kind == "str":
        return "r.str()", []
    item = ts_read_item(schema, f.type)
    if f.kind == "array":
        return "Array.from({ length: %d }, () => %s)" % (f.n[0], item), []
    var = camel(f.count)
    return ("[] as %s" % ts_type(schema, f), [
        "const %s = r.%s();" % (var, f.count_type),
        'if (%s > %s) throw new DecodeError("EBADMSG", type);'
        % (var, ts_value(f.max)),
        "for (let i = 0; i < %s; i++) %s.push(%s);" % (var, camel(f.name), item),
    ])


def ts_value(v):
    value, const = v
    return const if const else str(value)


def ts_write_item(schema, t, src):
    if t in INTS:
        return ["w.%s(%s);" % (t, src)]
    return ["w.%s(%s.%s);" % (f.type, src, f.name) for f in schema.structs[t]]


def ts_write(schema, f, src):
    if f.kind == "int":
        return ["w.%s(%s);" % (f.type, src)]
    if f.kind == "str":
        return ["w.str(%s, %s);" % (src, ts_value(f.max))]
    if f.kind == "array":
        out = ["if (%s.length !== %d) throw new RangeError(\"%s wants %d items\");"
               % (src, f.n[0], f.name, f.n[0])]
    else:
        out = ["w.count(%s.length, %s);" % (src, ts_value(f.max)),
               "w.%s(%s.length);" % (f.count_type, src)]
    out.append("for (const item of %s) {" % src)
    out += ["  " + s for s in ts_write_item(schema, f.type, "item")]
    out.append("}")
    return out


def ts_json_item(schema, t, src):
    if t in INTS:
        return "String(%s)" % src
    parts = []
    sep = "{"
    for f in schema.structs[t]:
        parts.append('"%s\\"%s\\":" + String(%s.%s)' % (sep, f.name, src, f.name))
        sep = ","
    return "(" + " + ".join(parts) + ' + "}")'


def ts_json(schema, f, src):
    if f.kind == "int":
        return "String(%s)" % src
    if f.kind == "str":
        return "jsonString(%s)" % src
    return '"[" + %s.map((v) => %s).join(",") + "]"' % (
        src, ts_json_item(schema, f.type, "v"))


def ts_range_checks(schema, msg):
    conds = []
    for f in msg.fields:
        if f.kind != "int":
            continue
        tmin, tmax = int_range(f.type)
        v = camel(f.name)
        if f.lo and f.lo[0] > tmin:
            conds.append("%s >= %s" % (v, ts_value(f.lo)))
        if f.hi and f.hi[0] < tmax:
            conds.append("%s <= %s" % (v, ts_value(f.hi)))
        if f.below:
            if f.below[0] == "field":
                conds.append("%s < %s" % (v, camel(f.below[1])))
            elif f.below[0] <= tmax:
                conds.append("%s < %s" % (v, ts_value(f.below)))
    return conds


TS_JSON_STRING = """
// A JSON string as gm_to_json writes it: only '"', '\\\\' and control
// characters escaped (\\u00XX), everything else as is.
function jsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"' || ch === "\\\\") out += "\\\\" + ch;
    else if (c < 0x20 || c === 0x7f) out += "\\\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}
"""

