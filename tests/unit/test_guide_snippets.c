/*
 * The code quoted in the docs is the code the build compiles. A quote is a
 * fenced C block right after a line
 *
 *     <!-- snippet: PATH -->          the whole file, or
 *     <!-- snippet: PATH#NAME -->     the lines between "ANCHOR: NAME" and
 *                                     "ANCHOR_END: NAME" comments in it,
 *
 * PATH relative to the repository root. A region loses its ANCHOR lines
 * and its common indentation. Each quote must equal its region line for
 * line; on a difference the test names the quote and the first line that
 * differs, so the fix is a paste. The programs themselves are built by
 * docs/guide/CMakeLists.txt and examples/hello/.
 */
#include "helpers.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 4096

struct text {
    char *buf;
    char *line[MAX_LINES];
    size_t n;
};

/* The repository root: this file is ROOT/tests/unit/test_guide_snippets.c
   (CMake passes absolute source paths). */
static void root_path(char *out, size_t len, const char *rel)
{
    char here[PATH_MAX];
    snprintf(here, sizeof here, "%s", __FILE__);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(here, '/');
        assert_non_null(slash);
        *slash = '\0';
    }
    snprintf(out, len, "%s/%s", here, rel);
}

/* Reads ROOT/rel into lines (the '\n's become NULs). */
static void text_read(struct text *t, const char *rel)
{
    char path[PATH_MAX + 64];
    root_path(path, sizeof path, rel);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    t->buf = malloc((size_t)size + 1);
    assert_non_null(t->buf);
    assert_int_equal(fread(t->buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    t->buf[size] = '\0';
    t->n = 0;
    for (char *p = t->buf; *p;) {
        assert_true(t->n < MAX_LINES);
        t->line[t->n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
}

static bool is_anchor(const char *line, const char *kind, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "/* %s: %s */", kind, name);
    return strstr(line, want) != NULL;
}

/* The region NAME of 'src' (NULL: all of it) into out[], ANCHOR lines
   dropped, common indentation removed. Returns the line count. */
static size_t region(const struct text *src, const char *name, const char **out,
                     size_t *indent)
{
    size_t n = 0;
    bool in = name == NULL, found = name == NULL;
    for (size_t i = 0; i < src->n; i++) {
        const char *l = src->line[i];
        if (name && is_anchor(l, "ANCHOR", name)) {
            in = found = true;
            continue;
        }
        if (name && is_anchor(l, "ANCHOR_END", name)) {
            in = false;
            continue;
        }
        if (in && !strstr(l, "/* ANCHOR"))
            out[n++] = l;
    }
    if (!found)
        fail_msg("no region '%s'", name);
    *indent = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t sp = strspn(out[i], " ");
        if (out[i][sp] && sp < *indent)
            *indent = sp;
    }
    if (*indent == SIZE_MAX)
        *indent = 0;
    return n;
}

/* Checks every quote in the markdown file 'rel'; returns how many. */
static int check_quotes(const char *rel)
{
    static struct text md, src;
    static const char *want[MAX_LINES];
    int quotes = 0;
    text_read(&md, rel);
    for (size_t i = 0; i < md.n; i++) {
        char spec[256];
        if (sscanf(md.line[i], "<!-- snippet: %255s -->", spec) != 1)
            continue;
        quotes++;
        char *name = strchr(spec, '#');
        if (name)
            *name++ = '\0';
        if (i + 1 >= md.n || strcmp(md.line[i + 1], "```c") != 0)
            fail_msg("%s:%zu: a snippet line not followed by ```c", rel, i + 1);
        text_read(&src, spec);
        size_t indent;
        size_t n = region(&src, name, want, &indent);
        size_t k = 0, at = i + 2;
        for (; at < md.n && strcmp(md.line[at], "```") != 0; at++, k++) {
            const char *w = k < n ? want[k] : NULL;
            if (w && strlen(w) >= indent)
                w += indent;
            if (!w || strcmp(md.line[at], w) != 0)
                fail_msg("%s:%zu: quote of %s%s%s differs at its line %zu:\n"
                         "  doc:  '%s'\n  file: '%s'",
                         rel, at + 1, spec, name ? "#" : "", name ? name : "",
                         k + 1, md.line[at], w ? w : "(past the end)");
        }
        if (k != n)
            fail_msg("%s:%zu: quote of %s%s%s stops at line %zu of %zu", rel,
                     i + 1, spec, name ? "#" : "", name ? name : "", k, n);
        free(src.buf);
    }
    free(md.buf);
    return quotes;
}

static void guide_quotes_its_programs_verbatim(void **state)
{
    (void)state;
    /* Every step of the guide quotes code: a quote lost in an edit shows
       as a drop in this count. */
    assert_true(check_quotes("docs/guide.md") >= 14);
}

static void readme_first_server_is_examples_hello(void **state)
{
    (void)state;
    assert_int_equal(check_quotes("README.md"), 1);
}

static void iocp_page_quotes_its_programs_verbatim(void **state)
{
    (void)state;
    assert_true(check_quotes("docs/iocp-to-ringport.md") >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(guide_quotes_its_programs_verbatim),
        cmocka_unit_test(readme_first_server_is_examples_hello),
        cmocka_unit_test(iocp_page_quotes_its_programs_verbatim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
