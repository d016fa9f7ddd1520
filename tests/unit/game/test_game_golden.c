/*
 * The golden byte vectors of the game messages (proto/golden.txt, quoted by
 * docs/protocol.md) against the generated C codec: each frame decodes to
 * the message the file states (compared in gm_to_json's one-line form) and
 * that message encodes back to the same bytes; each refused frame gets the
 * decoder result the file states (-ENOMSG, -EBADMSG, -ERANGE); every
 * message type of the schema has a vector. The TypeScript module is held
 * to the same file by clients/ts/test/golden.test.mjs, so the two
 * languages agree byte for byte.
 *
 * Usage: test_game_golden PATH/TO/proto/golden.txt
 */
#include "helpers.h"

#include "protocol.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_MAX 256
#define FRAME_MAX 1024

struct row {
    char name[64];
    uint8_t frame[FRAME_MAX];
    size_t len;
    char expect[512]; /* a JSON line, or "!EBADMSG" and the like */
};

static struct row rows[ROWS_MAX];
static size_t nrows;
static const char *golden_path;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* One "NAME HEX... EXPECT" line into r; false if it is not one. */
static bool parse_row(char *line, struct row *r)
{
    char *p = line;
    size_t n = strcspn(p, " \t");
    if (n == 0 || n >= sizeof r->name)
        return false;
    memcpy(r->name, p, n);
    r->name[n] = '\0';
    p += n;
    r->len = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0 || (p[2] != ' ' && p[2] != '\t'))
            break;
        if (r->len == FRAME_MAX)
            return false;
        r->frame[r->len++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    size_t e = strlen(p);
    while (e && isspace((unsigned char)p[e - 1]))
        p[--e] = '\0';
    if (e == 0 || e >= sizeof r->expect || (p[0] != '{' && p[0] != '!'))
        return false;
    memcpy(r->expect, p, e + 1);
    return r->len >= 4;
}

static int load_rows(void **state)
{
    (void)state;
    FILE *f = fopen(golden_path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", golden_path);
        return -1;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (nrows == ROWS_MAX || !parse_row(line, &rows[nrows])) {
            fprintf(stderr, "bad golden line: %s", line);
            fclose(f);
            return -1;
        }
        nrows++;
    }
    fclose(f);
    return nrows ? 0 : -1;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static int result_of(const char *expect)
{
    if (strcmp(expect, "!ENOMSG") == 0)
        return -ENOMSG;
    if (strcmp(expect, "!EBADMSG") == 0)
        return -EBADMSG;
    if (strcmp(expect, "!ERANGE") == 0)
        return -ERANGE;
    fail_msg("unknown expectation %s", expect);
    return 0;
}

static void each_vector_decodes_and_encodes_back(void **state)
{
    (void)state;
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        uint16_t type = le16(r->frame + 2);
        print_message("%s\n", r->name);
        /* The header's length is the payload's (the vectors are frames). */
        assert_int_equal(le16(r->frame), r->len - 4);
        struct gm_msg m;
        int rc = gm_decode(type, r->frame + 4, r->len - 4, &m);
        if (r->expect[0] == '!') {
            assert_int_equal(rc, result_of(r->expect));
            continue;
        }
        assert_int_equal(rc, 0);
        char json[512];
        assert_true(gm_to_json(&m, json, sizeof json) > 0);
        assert_string_equal(json, r->expect);
        uint8_t out[FRAME_MAX];
        int n = gm_encode_frame(&m, out, sizeof out);
        assert_int_equal(n, r->len);
        assert_memory_equal(out, r->frame, r->len);
        /* A buffer one byte short is refused, never overrun. */
        assert_int_equal(gm_encode_frame(&m, out, r->len - 1), -ENOBUFS);
    }
}

/* A schema message without a vector would go untested in both languages. */
static void every_message_type_has_a_vector(void **state)
{
    (void)state;
    for (unsigned t = 0; t < 0xFF00; t++) {
        if (strcmp(gm_type_name((uint16_t)t), "unknown") == 0)
            continue;
        bool found = false;
        for (size_t i = 0; i < nrows && !found; i++)
            found = le16(rows[i].frame + 2) == t && rows[i].expect[0] == '{';
        if (!found)
            fail_msg("no golden vector for %s (%u)", gm_type_name((uint16_t)t),
                     t);
    }
}

/* Truncating any vector anywhere is -EBADMSG (or -ENOMSG for an unknown
   type), never a read past the end: ASan watches the copies. */
static void every_truncation_is_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (r->expect[0] != '{' || r->len == 4)
            continue;
        for (size_t cut = 0; cut < r->len - 4; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, r->frame + 4, cut);
            struct gm_msg m;
            assert_int_equal(gm_decode(le16(r->frame + 2), copy, cut, &m),
                             -EBADMSG);
            free(copy);
        }
    }
}

/* The encoders keep the schema's limits: a string or a count over its
   MAX is -EINVAL, not a frame the other side must refuse. */
static void encoder_refuses_over_the_schema_limits(void **state)
{
    (void)state;
    uint8_t buf[GM_PAYLOAD_MAX];
    char name[GM_NAME_MAX + 1];
    memset(name, 'a', sizeof name);
    struct gm_msg m = {.type = GM_LOGIN};
    m.u.login = gm_str_of(name, GM_NAME_MAX);
    assert_int_equal(gm_encode(&m, buf, sizeof buf), 2 + GM_NAME_MAX);
    m.u.login = gm_str_of(name, GM_NAME_MAX + 1);
    assert_int_equal(gm_encode(&m, buf, sizeof buf), -EINVAL);
    m.type = GM_DUNGEON_STATE;
    memset(&m.u, 0, sizeof m.u);
    m.u.dungeon_state.nm = GM_MONSTERS_MAX + 1;
    assert_int_equal(gm_encode(&m, buf, sizeof buf), -EINVAL);
    m.type = 99;
    assert_int_equal(gm_encode(&m, buf, sizeof buf), -EINVAL);
    char json[64];
    assert_int_equal(gm_to_json(&m, json, sizeof json), -EINVAL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s proto/golden.txt\n", argv[0]);
        return 2;
    }
    golden_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_vector_decodes_and_encodes_back),
        cmocka_unit_test(every_message_type_has_a_vector),
        cmocka_unit_test(every_truncation_is_refused),
        cmocka_unit_test(encoder_refuses_over_the_schema_limits),
    };
    return cmocka_run_group_tests(tests, load_rows, NULL);
}
