/* Config keys from INI text and flags (<ringport/config.h>): values, ranges,
   sections, the error line naming file, line and key, the server's keys. */
#include "helpers.h"

#include <errno.h>
#include <ringport/config.h>
#include <ringport/server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
    struct rp_server_config cfg;
    char listen[64];
    char metrics[80];
    bool stats;
    struct rp_config_key keys[RP_CONFIG_SERVER_KEYS + 2];
    size_t n;
};

static void opts_init(struct opts *o)
{
    memset(o, 0, sizeof *o);
    rp_server_config_init(&o->cfg);
    o->stats = true;
    o->n = rp_config_server_keys(&o->cfg, o->listen, sizeof o->listen, o->keys,
                                 RP_CONFIG_SERVER_KEYS);
    o->keys[o->n++] = (struct rp_config_key){
        "metrics", RP_CONFIG_ENDPOINT, o->metrics, sizeof o->metrics, NULL};
    o->keys[o->n++] =
        (struct rp_config_key){"stats", RP_CONFIG_BOOL, &o->stats, 0, NULL};
}

static int parse(struct opts *o, const char *text, char *err, size_t len)
{
    return rp_config_parse(text, strlen(text), "t.ini", "echo", o->keys, o->n,
                           err, len);
}

static void ini_sets_every_kind_of_key(void **state)
{
    (void)state;
    struct opts o;
    char err[256] = "";
    opts_init(&o);
    assert_string_equal(o.listen, "127.0.0.1"); /* the default is kept */
    const char *text = "; comment\nlisten = ::1\nport = 7001\n[echo]\n"
                       "mode = raw   ; inline comment\nbackend = epoll\n"
                       "threads = 3\nmax_sessions = 77\nstats = off\n"
                       "metrics = [::1]:9100\n";
    assert_int_equal(parse(&o, text, err, sizeof err), 0);
    assert_string_equal(o.cfg.listen_addr, "::1");
    assert_int_equal(o.cfg.port, 7001);
    assert_int_equal(o.cfg.mode, RP_SERVER_RAW);
    assert_int_equal(o.cfg.backend, RP_BACKEND_EPOLL);
    assert_int_equal(o.cfg.io_threads, 3);
    assert_int_equal(o.cfg.max_sessions, 77);
    assert_false(o.stats);
    assert_string_equal(o.metrics, "[::1]:9100");
}

static void errors_name_the_file_line_and_key(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    opts_init(&o);
    assert_int_equal(parse(&o, "port = 1\n\nbogus = 3\n", err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "t.ini:3: key 'bogus': unknown");
    assert_int_equal(parse(&o, "port = 70000\n", err, sizeof err), -EINVAL);
    assert_string_equal(
        err, "t.ini:1: key 'port': wants a whole number 0..65535, got '70000'");
    assert_int_equal(parse(&o, "\nmode = chunky\n", err, sizeof err), -EINVAL);
    assert_string_equal(
        err, "t.ini:2: key 'mode': wants raw or framed, got 'chunky'");
    assert_int_equal(parse(&o, "threads = -1\n", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "t.ini:1: key 'threads'"));
    assert_int_equal(parse(&o, "metrics = here\n", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "t.ini:1: key 'metrics': wants ADDR:PORT"));
    assert_int_equal(parse(&o, "[game]\nport = 1\n", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "t.ini:2: section [game]: unknown"));
    /* A syntax error before a bad key is the one reported. */
    assert_int_equal(parse(&o, "port 1\nbogus = 2\n", err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "t.ini:1: syntax error (want 'key = value')");
    char long_line[400];
    memset(long_line, 'x', sizeof long_line);
    memcpy(long_line, "listen = ", 9);
    long_line[sizeof long_line - 2] = '\n';
    long_line[sizeof long_line - 1] = '\0';
    assert_int_equal(parse(&o, long_line, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "t.ini:1: line too long"));
}

static void set_reports_unknown_keys_and_bad_values(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    opts_init(&o);
    assert_int_equal(rp_config_set(o.keys, o.n, "nope", "1", err, sizeof err),
                     -ENOENT);
    assert_int_equal(
        rp_config_set(o.keys, o.n, "backend", "iocp", err, sizeof err),
        -EINVAL);
    assert_string_equal(err, "wants auto, uring or epoll, got 'iocp'");
    assert_int_equal(o.cfg.backend, RP_BACKEND_AUTO); /* untouched */
    assert_int_equal(rp_config_set(o.keys, o.n, "max_sessions", "4294967296",
                                   err, sizeof err),
                     -EINVAL);
    assert_int_equal(rp_config_set(o.keys, o.n, "max_sessions", "4294967295",
                                   err, sizeof err),
                     0);
    assert_int_equal(o.cfg.max_sessions, 4294967295u);
    char big[100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(rp_config_set(o.keys, o.n, "listen", big, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "at most 63 characters"));
}

static void endpoints_parse_v4_v6_and_any(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(rp_config_parse_endpoint("127.0.0.1:9100", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(rp_config_parse_endpoint("[::1]:0", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(rp_config_parse_endpoint(":9100", &ss, &len), 0);
    const char *bad[] = {
        "",          "9100",          "127.0.0.1", "127.0.0.1:", "::1:9100",
        "[::1]9100", "1.2.3.4:99999", "host:80",   "1.2.3.4:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rp_config_parse_endpoint(bad[i], NULL, NULL) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

static void load_reports_a_missing_file(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    opts_init(&o);
    assert_int_equal(rp_config_load("/nonexistent/x.ini", "echo", o.keys, o.n,
                                    err, sizeof err),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.ini: cannot read"));
    assert_int_equal(
        rp_config_load("/tmp", "echo", o.keys, o.n, err, sizeof err), -EINVAL);
}

/* --no-stats as a switch; --mode hidden, as ringport-game has it. */
static const struct rp_config_flag test_flags[] = {
    {"--no-stats", "stats", "false"},
    {"--mode", NULL, NULL},
    {NULL, NULL, NULL}};

static int apply(struct opts *o, const char *const *args, char *err, size_t len)
{
    char *argv[16] = {"prog"};
    int argc = 1;
    while (*args && argc < 15)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    return rp_config_apply_args(o->keys, o->n, test_flags, "echo", argc, argv,
                                err, len);
}

static void args_set_keys_and_override_the_config_file(void **state)
{
    (void)state;
    struct opts o;
    char err[256] = "", ini[] = "/tmp/ringport-config-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    const char *text = "port = 1\nthreads = 3\n[echo]\nmax_sessions = 16\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    opts_init(&o);
    /* The file comes after the flags on the line: they still win. */
    int r = apply(&o,
                  (const char *const[]){"--port", "0", "--max-sessions", "9",
                                        "--no-stats", "--config", ini,
                                        "--backend", "epoll", NULL},
                  err, sizeof err);
    unlink(ini);
    if (r != 0)
        fail_msg("refused: %s", err);
    assert_int_equal(o.cfg.port, 0);
    assert_int_equal(o.cfg.max_sessions, 9);
    assert_int_equal(o.cfg.io_threads, 3); /* from the file alone */
    assert_int_equal(o.cfg.backend, RP_BACKEND_EPOLL);
    assert_false(o.stats);
    /* In order: a later flag overrides the switch before it. */
    assert_int_equal(
        apply(&o, (const char *const[]){"--no-stats", "--stats", "on", NULL},
              err, sizeof err),
        0);
    assert_true(o.stats);
}

static void args_name_the_flag_they_refuse(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    opts_init(&o);
    uint16_t port = o.cfg.port;
    const struct {
        const char *args[5];
        int r;
        const char *says;
    } bad[] = {
        {{"--colour", "red"}, -ENOENT, "unknown flag '--colour' (try --help)"},
        {{"--max_sessions", "5"}, -ENOENT, "unknown flag '--max_sessions'"},
        {{"port", "5"}, -ENOENT, "unknown flag 'port'"},
        {{"--mode", "raw"}, -ENOENT, "unknown flag '--mode'"}, /* hidden */
        {{"--port", "1", "--threads"}, -EINVAL, "--threads needs a value"},
        {{"--config"}, -EINVAL, "--config needs a value"},
        {{"--backend", "iocp"},
         -EINVAL,
         "--backend wants auto, uring or epoll, got 'iocp'"},
        {{"--port", "70000"}, -EINVAL, "--port wants a whole number"},
        {{"--config", "/nonexistent/x.ini"},
         -ENOENT,
         "/nonexistent/x.ini: cannot read"},
        /* Every flag is checked before the file is read. */
        {{"--config", "/nonexistent/x.ini", "--bogus", "1"},
         -ENOENT,
         "unknown flag '--bogus'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int r = apply(&o, bad[i].args, err, sizeof err);
        if (r != bad[i].r || !strstr(err, bad[i].says))
            fail_msg("case %zu: %d '%s', want %d '%s'", i, r, err, bad[i].r,
                     bad[i].says);
    }
    /* Refused in the check: nothing set; a bad value: its key untouched. */
    assert_int_equal(o.cfg.port, port);
    assert_int_equal(o.cfg.backend, RP_BACKEND_AUTO);
}

static void help_wins_unless_an_earlier_flag_is_unknown(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    opts_init(&o);
    uint16_t port = o.cfg.port;
    assert_int_equal(
        apply(&o,
              (const char *const[]){"--port", "5", "--help", "--bogus", NULL},
              err, sizeof err),
        RP_CONFIG_HELP);
    assert_int_equal(o.cfg.port, port); /* nothing set */
    assert_int_equal(
        apply(&o, (const char *const[]){"-h", NULL}, err, sizeof err),
        RP_CONFIG_HELP);
    assert_int_equal(apply(&o,
                           (const char *const[]){"--bogus", "1", "-h", NULL},
                           err, sizeof err),
                     -ENOENT);
    /* A value is a value, even one spelled like --help. */
    assert_int_equal(apply(&o, (const char *const[]){"--port", "--help", NULL},
                           err, sizeof err),
                     -EINVAL);
    assert_string_equal(err,
                        "--port wants a whole number 0..65535, got '--help'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ini_sets_every_kind_of_key),
        cmocka_unit_test(errors_name_the_file_line_and_key),
        cmocka_unit_test(set_reports_unknown_keys_and_bad_values),
        cmocka_unit_test(endpoints_parse_v4_v6_and_any),
        cmocka_unit_test(load_reports_a_missing_file),
        cmocka_unit_test(args_set_keys_and_override_the_config_file),
        cmocka_unit_test(args_name_the_flag_they_refuse),
        cmocka_unit_test(help_wins_unless_an_earlier_flag_is_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
