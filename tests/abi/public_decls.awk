# Reads the preprocessor's output for the public headers (with its line
# markers) and prints one line per top-level declaration of a function or
# an object named rp_* made in include/ringport/*.h:
#     HEADER NAME marked|unmarked
# 'marked' when the declaration carries RP_API, which the preprocessor has
# turned into visibility("default"). Typedefs, static inline functions and
# struct or enum definitions are not declarations of exported names.
function flush(   s, name, m) {
    s = stmt
    stmt = ""
    if (file !~ /\/ringport\/[a-z_]+\.h$/)
        return
    if (s ~ /(^|[^A-Za-z0-9_])typedef[^A-Za-z0-9_]/)
        return
    name = ""
    # A function: rp_x( not preceded by "(*" (a pointer to a function).
    if (match(s, /(^|[^A-Za-z0-9_(*])[ \t]*\**[ \t]*rp_[A-Za-z0-9_]+[ \t]*\(/)) {
        m = substr(s, RSTART, RLENGTH)
        sub(/^.*[^A-Za-z0-9_]?rp_/, "rp_", m)
        match(m, /^rp_[A-Za-z0-9_]+/)
        name = substr(m, RSTART, RLENGTH)
    } else if (s ~ /(^|[^A-Za-z0-9_])extern[^A-Za-z0-9_]/ &&
               match(s, /rp_[A-Za-z0-9_]+[ \t]*(\[[^]]*\])?[ \t]*$/)) {
        m = substr(s, RSTART, RLENGTH)
        match(m, /^rp_[A-Za-z0-9_]+/)
        name = substr(m, RSTART, RLENGTH)
    }
    if (name == "")
        return
    h = file
    sub(/^.*\//, "", h)
    print h, name, (s ~ /visibility *\( *"default" *\)/ ? "marked" : "unmarked")
}
/^# [0-9]+ "/ {
    file = $3
    gsub(/"/, "", file)
    next
}
{
    line = $0
    n = length(line)
    for (i = 1; i <= n; i++) {
        c = substr(line, i, 1)
        if (instr) {
            if (c == "\\") { i++; continue }
            if (c == instr) instr = ""
            if (depth == 0) stmt = stmt c
            continue
        }
        if (c == "\"" || c == "'") {
            instr = c
            if (depth == 0) stmt = stmt c
            continue
        }
        if (c == "{") {
            depth++
            stmt = ""   # a definition: what came before is no declaration
            continue
        }
        if (c == "}") {
            if (depth > 0) depth--
            stmt = ""
            continue
        }
        if (depth > 0)
            continue
        if (c == ";") {
            flush()
            continue
        }
        stmt = stmt c
    }
    if (depth == 0) stmt = stmt " "
}
