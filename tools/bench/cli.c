/*
 * ringport-bench's command-line pieces that its echo/room parser (main.c)
 * and its game parser (game_main.c) share: the refusal that ends with
 * status 2, a flag's value, a number in a range. Contracts in bench.h.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_bad_usage(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (try --help)\n", stderr);
    exit(2);
}

const char *bench_flag_value(const char *prog, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0)
        bench_bad_usage(prog, "unexpected argument '%s'", a);
    if (*i + 1 >= argc)
        bench_bad_usage(prog, "%s needs a value", a);
    return argv[++*i];
}

double bench_flag_num(const char *prog, const char *flag, const char *s,
                      double lo, double hi, bool whole)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi) ||
        (whole && v != floor(v)))
        bench_bad_usage(prog, "%s wants a %snumber in [%g, %g], got '%s'", flag,
                        whole ? "whole " : "", lo, hi, s);
    return v;
}

bool bench_flag_transport(const char *prog, const char *v)
{
    if (strcmp(v, "tcp") == 0)
        return false;
    if (strcmp(v, "ws") != 0)
        bench_bad_usage(prog, "--transport wants tcp or ws, got '%s'", v);
    return true;
}
