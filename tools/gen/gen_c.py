"""The C emitter of tools/gen/gen.py: examples/game/gen/protocol_gen.{h,c}.

One switch case per message for gm_decode, gm_encode and gm_to_json, over
the byte cursors of the former hand-written protocol.c (a sticky failure
flag, so a run of fields is read or written and checked once). The output
is close to the repository's style but not clang-formatted: check-gen
compares bytes and clang-format versions differ, so gen/.clang-format
keeps `make format` off it.
"""

from schema import HEADER, INTS, int_range


def c_value(schema, v):
    value, const = v
    if const:
        return "%s_%s" % (schema.prefix.upper(), const)
    return str(value)


def c_item_type(schema, t):
    if t in INTS:
        return INTS[t][2]
    return "struct %s_%s" % (schema.prefix, t)


def c_field_decls(schema, f):
    if f.kind == "int":
        return ["%s %s;" % (INTS[f.type][2], f.name)]
    if f.kind == "str":
        return ["struct %s_str %s;" % (schema.prefix, f.name)]
    if f.kind == "array":
        return ["%s %s[%s];" % (c_item_type(schema, f.type), f.name,
                                c_value(schema, f.n))]
    return ["%s %s;" % (INTS[f.count_type][2], f.count),
            "%s %s[%s];" % (c_item_type(schema, f.type), f.name,
                            c_value(schema, f.max))]


def c_member_decl(schema, msg):
    """The member's declaration in the union, or None for no fields."""
    if not msg.fields:
        return None
    if msg.flat:
        decl = c_field_decls(schema, msg.fields[0])
        assert len(decl) == 1
        return [decl[0].replace(" %s;" % msg.fields[0].name,
                                " %s;" % msg.member)]
    lines = ["struct {"]
    for f in msg.fields:
        lines += ["    " + d for d in c_field_decls(schema, f)]
    lines.append("} %s;" % msg.member)
    return lines


def c_path(msg, f, base):
    if msg.flat:
        return "%s->u.%s" % (base, msg.member)
    return "%s->u.%s.%s" % (base, msg.member, f.name)


def c_comment(text):
    return " /* %s */" % text if text else ""


# ---- C -------------------------------------------------------------------


def gen_c_header(schema):
    P, p = schema.prefix.upper(), schema.prefix
    o = []
    o.append("/* %s */" % HEADER)
    o.append("""/*
 * The game messages in C: types, codes, limits, the decoded message
 * (struct %(p)s_msg) and its encoder, decoder and JSON form. Plain C on byte
 * spans with no ringport API, so the bots keep their rule of depending on
 * nothing they measure. Every field is little-endian; a string is a u16
 * length then the bytes (as rp_packet writes them).
 *
 * %(p)s_decode() judges a payload in three steps:
 *   -ENOMSG   type unknown to the protocol
 *   -EBADMSG  payload the wrong length (short, trailing bytes, a count
 *             over its array)
 *   -ERANGE   a field out of its wire range ('out' is filled)
 */
#ifndef RINGPORT_GAME_PROTOCOL_GEN_H
#define RINGPORT_GAME_PROTOCOL_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
""" % {"p": p})
    o.append("enum %s_type {" % p)
    last = {}
    for to in ("server", "client"):
        o.append("    /* %s */" % ("Client -> server."
                                    if to == "server" else "Server -> client."))
        msgs = [m for m in schema.messages if m.to == to]
        for m in msgs:
            o.append("    %s_%s = %d,%s" % (P, m.name, m.number,
                                           c_comment(m.comment)))
        last[to] = max(msgs, key=lambda m: m.number)
        o.append("    %s_%s_LAST = %s_%s," % (
            P, "CLIENT" if to == "server" else "SERVER", P, last[to].name))
    o.append("};\n")
    for name, prefix, _, values in schema.enums:
        o.append("enum %s_%s {" % (p, name))
        for vname, value, comment in values:
            o.append("    %s_%s_%s = %d,%s" % (P, prefix, vname, value,
                                              c_comment(comment)))
        o.append("};\n")
    for name, value, text, comment in schema.consts:
        text = text + "u" if text.startswith("0x") else str(value)
        o.append("#define %s_%s %s%s" % (P, name, text, c_comment(comment)))
    o.append("")
    for name, fields in schema.structs.items():
        o.append("struct %s_%s {" % (p, name))
        for f in fields:
            o += ["    " + d for d in c_field_decls(schema, f)]
        o.append("};\n")
    o.append("/* A string inside a decoded payload: a view, valid while the "
             "payload is. */")
    o.append("struct %s_str {\n    const char *p;\n    uint16_t len;\n};\n" % p)
    o.append("/* One decoded message. Only the member of 'type' is "
             "meaningful. */")
    o.append("struct %s_msg {\n    uint16_t type;\n    union {" % p)
    seen = set()
    for m in schema.messages:
        decl = c_member_decl(schema, m)
        if decl is None or m.member in seen:
            continue
        seen.add(m.member)
        o += ["        " + d for d in decl]
    o.append("    } u;\n};\n")
    o.append("""/* True for the types a client may send. */
bool %(p)s_is_client_type(uint16_t type);
/* "login", "pvp_state", ...; "unknown" otherwise. */
const char *%(p)s_type_name(uint16_t type);""" % {"p": p})
    for name, _, _, _ in schema.enums:
        o.append("const char *%s_%s_name(uint16_t code);" % (p, name))
    o.append("""
/*
 * Decodes the payload of a frame of 'type' into 'out' (strings point into
 * 'p'). Returns 0, -ENOMSG, -EBADMSG or -ERANGE (above). Never reads
 * outside p[0..len).
 */
int %(p)s_decode(uint16_t type, const uint8_t *p, size_t len,
              struct %(p)s_msg *out);

/*
 * Encodes 'm' as a payload into buf[0..cap). Returns the payload length,
 * or -ENOBUFS (cap too small), -EINVAL (unknown type, a string or a count
 * over its schema limit). Encoding does not check ranges: tests use it to
 * build bad input.
 */
int %(p)s_encode(const struct %(p)s_msg *m, uint8_t *buf, size_t cap);

/* The frame (4-byte header + payload) of 'm' into buf; its length or
   -errno as %(p)s_encode. */
int %(p)s_encode_frame(const struct %(p)s_msg *m, uint8_t *buf, size_t cap);

/*
 * 'm' as one line of JSON into buf (NUL-terminated), keys in schema order:
 * {"type":"login_ok","player_id":7,"gold":0}, the form of proto/golden.txt
 * (the TypeScript module writes the same). Returns the length, -ENOBUFS
 * or -EINVAL (unknown type).
 */
int %(p)s_to_json(const struct %(p)s_msg *m, char *buf, size_t cap);

#endif""" % {"p": p})
    return "\n".join(o) + "\n"


C_HELPERS = r"""
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A cursor over a byte span with a sticky failure flag on each side, so a
   run of fields is written or read and checked once. */
struct wr {
    uint8_t *p;
    size_t len, cap;
    bool failed;
};

struct rd {
    const uint8_t *p;
    size_t pos, len;
    bool failed;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->failed || w->cap - w->len < n) {
        w->failed = true;
        return;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u8(struct wr *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}

static void put_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static inline void put_u64(struct wr *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void put_str(struct wr *w, struct PFX_str s)
{
    put_u16(w, s.len);
    put(w, s.p, s.len);
}

static const uint8_t *get(struct rd *r, size_t n)
{
    if (r->failed || r->len - r->pos < n) {
        r->failed = true;
        r->pos = r->len;
        return NULL;
    }
    const uint8_t *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static uint8_t get_u8(struct rd *r)
{
    const uint8_t *b = get(r, 1);
    return b ? b[0] : 0;
}

static uint16_t get_u16(struct rd *r)
{
    const uint8_t *b = get(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t get_u32(struct rd *r)
{
    const uint8_t *b = get(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24
             : 0;
}

static inline uint64_t get_u64(struct rd *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static struct PFX_str get_str(struct rd *r)
{
    struct PFX_str s = {"", 0};
    uint16_t n = get_u16(r);
    const uint8_t *b = get(r, n);
    if (b) {
        s.p = (const char *)b;
        s.len = n;
    }
    return s;
}

/* JSON output: an appender that stops (and stays failed) when full. */
struct js {
    char *p;
    size_t len, cap;
    bool failed;
};

static void js_printf(struct js *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void js_printf(struct js *j, const char *fmt, ...)
{
    if (j->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->p + j->len, j->cap - j->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= j->cap - j->len) {
        j->failed = true;
        return;
    }
    j->len += (size_t)n;
}

static void js_str(struct js *j, struct PFX_str s)
{
    js_printf(j, "\"");
    for (uint16_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            js_printf(j, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            js_printf(j, "\\u%04x", c);
        else
            js_printf(j, "%c", c);
    }
    js_printf(j, "\"");
}
"""


def c_get(schema, t, target):
    if t in INTS:
        size, signed, ctype = INTS[t]
        call = "get_u%d(&r)" % (size * 8)
        if signed:
            call = "(%s)%s" % (ctype, call)
        return ["%s = %s;" % (target, call)]
    return ["get_%s(&r, &%s);" % (t, target)]


def c_put(schema, t, src):
    if t in INTS:
        size, signed, ctype = INTS[t]
        if signed:
            return ["put_u%d(&w, (uint%d_t)%s);" % (size * 8, size * 8, src)]
        return ["put_u%d(&w, %s);" % (size * 8, src)]
    return ["put_%s(&w, &%s);" % (t, src)]


def c_json_int(t, src):
    size, signed, _ = INTS[t]
    if size == 8:
        return 'js_printf(&j, "%%" PRIu64, %s);' % src
    if signed:
        return 'js_printf(&j, "%%d", (int)%s);' % src
    if size == 4:
        return 'js_printf(&j, "%%" PRIu32, %s);' % src
    return 'js_printf(&j, "%%u", (unsigned)%s);' % src


def c_range_checks(schema, msg):
    conds = []
    for f in msg.fields:
        if f.kind != "int":
            continue
        tmin, tmax = int_range(f.type)
        path = c_path(msg, f, "out")
        if f.lo and f.lo[0] > tmin:
            conds.append("%s >= %s" % (path, c_value(schema, f.lo)))
        if f.hi and f.hi[0] < tmax:
            conds.append("%s <= %s" % (path, c_value(schema, f.hi)))
        if f.below:
            if f.below[0] == "field":
                other = [g for g in msg.fields if g.name == f.below[1]][0]
                conds.append("%s < %s" % (path, c_path(msg, other, "out")))
            elif f.below[0] <= tmax:
                conds.append("%s < %s" % (path, c_value(schema, f.below)))
    return conds


def gen_c_source(schema):
    P, p = schema.prefix.upper(), schema.prefix
    o = ["/* %s */" % HEADER]
    o.append("""/*
 * Encoding, decoding and the JSON form of the game messages
 * (protocol_gen.h), one switch case per message of proto/game.schema.
 */
#include "protocol_gen.h"
""")
    o.append(C_HELPERS.replace("PFX", p).strip("\n") + "\n")
    for name, fields in schema.structs.items():
        st = "struct %s_%s" % (p, name)
        o.append("static void put_%s(struct wr *w, const %s *v)\n{" % (name, st))
        for f in fields:
            o += ["    " + s.replace("&w", "w")
                  for s in c_put(schema, f.type, "v->" + f.name)]
        o.append("}\n")
        o.append("static void get_%s(struct rd *rp, %s *v)\n{" % (name, st))
        for f in fields:
            o += ["    " + s.replace("&r", "rp")
                  for s in c_get(schema, f.type, "v->" + f.name)]
        o.append("}\n")
        o.append("static void json_%s(struct js *jp, const %s *v)\n{" % (name, st))
        sep = "{"
        for f in fields:
            o.append('    js_printf(jp, "%s\\"%s\\":");' % (sep, f.name))
            o.append("    " + c_json_int(f.type, "v->" + f.name).replace("&j", "jp"))
            sep = ","
        o.append('    js_printf(jp, "}");\n}\n')

    o.append("bool %s_is_client_type(uint16_t type)\n{\n    switch (type) {" % p)
    for m in schema.messages:
        if m.to == "server":
            o.append("    case %s_%s:" % (P, m.name))
    o.append("        return true;\n    }\n    return false;\n}\n")
    o.append("const char *%s_type_name(uint16_t type)\n{\n    switch (type) {" % p)
    for m in schema.messages:
        o.append('    case %s_%s: return "%s";' % (P, m.name, m.lname))
    o.append('    }\n    return "unknown";\n}\n')
    for name, prefix, _, values in schema.enums:
        o.append("const char *%s_%s_name(uint16_t code)\n{\n    switch (code) {"
                 % (p, name))
        for vname, _, _ in values:
            o.append('    case %s_%s_%s: return "%s";' % (P, prefix, vname,
                                                        vname.lower()))
        o.append('    }\n    return "unknown";\n}\n')

    # decode
    o.append("int %s_decode(uint16_t type, const uint8_t *p, size_t len,\n"
             "              struct %s_msg *out)\n{" % (p, p))
    o.append("    struct rd r = {p, 0, len, false};")
    o.append("    bool range_ok = true;")
    o.append("    memset(out, 0, sizeof *out);")
    o.append("    out->type = type;")
    o.append("    switch (type) {")
    for m in schema.messages:
        o.append("    case %s_%s:" % (P, m.name))
        for f in m.fields:
            path = c_path(m, f, "out")
            if f.kind == "int":
                o += ["        " + s for s in c_get(schema, f.type, path)]
            elif f.kind == "str":
                o.append("        %s = get_str(&r);" % path)
            elif f.kind == "array":
                o.append("        for (unsigned i = 0; i < %s; i++) {"
                         % c_value(schema, f.n))
                o += ["            " + s
                      for s in c_get(schema, f.type, path + "[i]")]
                o.append("        }")
            else:
                cpath = "out->u.%s.%s" % (m.member, f.count)
                o += ["        " + s for s in c_get(schema, f.count_type, cpath)]
                o.append("        if (%s > %s)" % (cpath, c_value(schema, f.max)))
                o.append("            return -EBADMSG;")
                o.append("        for (unsigned i = 0; i < %s; i++) {" % cpath)
                o += ["            " + s
                      for s in c_get(schema, f.type, path + "[i]")]
                o.append("        }")
        conds = c_range_checks(schema, m)
        if conds:
            o.append("        range_ok = " +
                     " &&\n                   ".join(conds) + ";")
        o.append("        break;")
    o.append("    default: return -ENOMSG;\n    }")
    o.append("    if (r.failed || r.pos != r.len)\n        return -EBADMSG;")
    o.append("    return range_ok ? 0 : -ERANGE;\n}\n")

    # encode
    o.append("int %s_encode(const struct %s_msg *m, uint8_t *buf, size_t cap)\n{"
             % (p, p))
    o.append("    struct wr w = {buf, 0, cap, false};")
    o.append("    switch (m->type) {")
    for msg in schema.messages:
        o.append("    case %s_%s:" % (P, msg.name))
        for f in msg.fields:
            path = c_path(msg, f, "m")
            if f.kind == "int":
                o += ["        " + s for s in c_put(schema, f.type, path)]
            elif f.kind == "str":
                o.append("        if (%s.len > %s)" % (path, c_value(schema, f.max)))
                o.append("            return -EINVAL;")
                o.append("        put_str(&w, %s);" % path)
            elif f.kind == "array":
                o.append("        for (unsigned i = 0; i < %s; i++) {"
                         % c_value(schema, f.n))
                o += ["            " + s
                      for s in c_put(schema, f.type, path + "[i]")]
                o.append("        }")
            else:
                cpath = "m->u.%s.%s" % (msg.member, f.count)
                o.append("        if (%s > %s)" % (cpath, c_value(schema, f.max)))
                o.append("            return -EINVAL;")
                o += ["        " + s for s in c_put(schema, f.count_type, cpath)]
                o.append("        for (unsigned i = 0; i < %s; i++) {" % cpath)
                o += ["            " + s
                      for s in c_put(schema, f.type, path + "[i]")]
                o.append("        }")
        o.append("        break;")
    o.append("    default: return -EINVAL;\n    }")
    o.append("    return w.failed ? -ENOBUFS : (int)w.len;\n}\n")

    o.append("""int %(p)s_encode_frame(const struct %(p)s_msg *m, uint8_t *buf, size_t cap)
{
    if (cap < 4)
        return -ENOBUFS;
    int n = %(p)s_encode(m, buf + 4, cap - 4);
    if (n < 0)
        return n;
    buf[0] = (uint8_t)n;
    buf[1] = (uint8_t)(n >> 8);
    buf[2] = (uint8_t)m->type;
    buf[3] = (uint8_t)(m->type >> 8);
    return n + 4;
}
""" % {"p": p})

    # JSON
    o.append("int %s_to_json(const struct %s_msg *m, char *buf, size_t cap)\n{"
             % (p, p))
    o.append("    struct js j = {buf, 0, cap, cap == 0};")
    o.append("    switch (m->type) {")
    for msg in schema.messages:
        o.append("    case %s_%s:" % (P, msg.name))
        o.append('        js_printf(&j, "{\\"type\\":\\"%s\\"");' % msg.lname)
        for f in msg.fields:
            path = c_path(msg, f, "m")
            o.append('        js_printf(&j, ",\\"%s\\":");' % f.name)
            if f.kind == "int":
                o.append("        " + c_json_int(f.type, path))
            elif f.kind == "str":
                o.append("        js_str(&j, %s);" % path)
            else:
                n = (c_value(schema, f.n) if f.kind == "array"
                     else "m->u.%s.%s" % (msg.member, f.count))
                o.append('        js_printf(&j, "[");')
                o.append("        for (unsigned i = 0; i < %s; i++) {" % n)
                o.append('            js_printf(&j, "%s", i ? "," : "");')
                if f.type in INTS:
                    o.append("            " + c_json_int(f.type, path + "[i]"))
                else:
                    o.append("            json_%s(&j, &%s[i]);" % (f.type, path))
                o.append("        }")
                o.append('        js_printf(&j, "]");')
        o.append('        js_printf(&j, "}");')
        o.append("        break;")
    o.append("    default: return -EINVAL;\n    }")
    o.append("    return j.failed ? -ENOBUFS : (int)j.len;\n}")
    return "\n".join(o) + "\n"

