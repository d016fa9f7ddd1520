/*
 * Real WebSocket clients against ringport-echo --ws-port 0, on io_uring
 * and on epoll: Debian's node-ws (tests/ws/echo_node.js) and
 * python3-websockets (tests/ws/echo_python.py) each echo frames of 0 B to
 * 60 KiB, keep 64 in flight, send a fragmented message and two frames in
 * one message, ping with a payload and close with the handshake; each
 * prints "ok" and exits 0. A client whose runtime or module is missing
 * is skipped with one line saying which package brings it
 * (scripts/deps.sh ws).
 *
 * The programs' side of the contract too: ringport-game and ringport-echo
 * take --ws-port (and the INI key ws_port), print "ws listening on
 * ADDR:PORT" right after "listening on ADDR:PORT", upgrade a raw client
 * there, and raw mode refuses a WebSocket port.
 */
#include "ws_util.h"

#include "child_util.h"

#include <sys/stat.h>

#ifndef RP_TESTS_DIR
#error "RP_TESTS_DIR (the tests/ source folder) is set by tests/CMakeLists.txt"
#endif

static const char *backend;

/* The absolute path of 'name' on PATH (or 'name' itself when it has a
   slash and is executable); false if none. */
static bool find_program(const char *name, char *out, size_t len)
{
    if (strchr(name, '/')) {
        snprintf(out, len, "%s", name);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(out, len, "%.*s/%s", (int)n, path, name);
        if (n && access(out, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* Runs argv (argv[0] absolute) to its end, output to /dev/null; its exit
   status (bounded as cu_wait). */
static int run_quiet(char *const argv[])
{
    struct cu_child c;
    cu_start(&c, argv, false);
    char line[256];
    while (cu_read_line(c.out, line, sizeof line) > 0)
        ;
    int status = cu_wait(&c);
    cu_close(&c);
    return status;
}

/* The WebSocket port from ringport-echo's second line. */
static uint16_t read_ws_port(struct cu_child *c)
{
    char line[256];
    cu_read_line(c->out, line, sizeof line);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "ws listening on ", 16) != 0 || !colon)
        fail_msg("unexpected second line '%s'", line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* Runs the client 'argv' (its last slot gets the port) against a fresh
   ringport-echo with a WebSocket listener; it must print "ok". */
static void run_client(char **argv, size_t port_slot)
{
    static const char *const extra[] = {"--ws-port", "0", "--max-payload",
                                        "65535", NULL};
    struct cu_child echo;
    cu_echo_start(&echo, backend, extra);
    char port[8];
    snprintf(port, sizeof port, "%u", read_ws_port(&echo));
    argv[port_slot] = port;
    struct cu_child c;
    cu_start(&c, argv, false);
    char line[512], last[512] = "";
    while (cu_read_line(c.out, line, sizeof line) > 0)
        snprintf(last, sizeof last, "%s", line);
    int status = cu_wait(&c);
    cu_close(&c);
    if (status != 0 || strcmp(last, "ok") != 0)
        fail_msg("%s: exit %d, said '%s'", argv[0], status, last);
    cu_echo_stop(&echo);
}

static void node_ws_client_echoes_pings_and_closes(void **state)
{
    (void)state;
    char node[PATH_MAX], script[PATH_MAX];
    if (!find_program("node", node, sizeof node) &&
        !find_program("nodejs", node, sizeof node)) {
        printf("skip: node not installed (scripts/deps.sh ws)\n");
        skip();
    }
    /* Debian's node-ws lives in /usr/share/nodejs. */
    const char *np = getenv("NODE_PATH");
    char paths[PATH_MAX + 32];
    snprintf(paths, sizeof paths, "%s%s/usr/share/nodejs", np ? np : "",
             np && *np ? ":" : "");
    setenv("NODE_PATH", paths, 1);
    char *probe[] = {node, "-e", "require('ws')", NULL};
    if (run_quiet(probe) != 0) {
        printf("skip: node module 'ws' missing (Debian node-ws; "
               "scripts/deps.sh ws)\n");
        skip();
    }
    snprintf(script, sizeof script, "%s/ws/echo_node.js", RP_TESTS_DIR);
    char *argv[] = {node, script, NULL, NULL};
    run_client(argv, 2);
}

static void python_websockets_client_echoes_pings_and_closes(void **state)
{
    (void)state;
    char py[PATH_MAX], script[PATH_MAX];
    /* The first python3 that has the module: PATH's may be a private one
       without Debian's packages. */
    static const char *const candidates[] = {"python3", "/usr/bin/python3"};
    bool found = false;
    for (size_t i = 0; i < 2 && !found; i++) {
        if (!find_program(candidates[i], py, sizeof py))
            continue;
        char *probe[] = {py, "-c", "import websockets", NULL};
        found = run_quiet(probe) == 0;
    }
    if (!found) {
        printf("skip: python3 module 'websockets' missing (Debian "
               "python3-websockets; scripts/deps.sh ws)\n");
        skip();
    }
    snprintf(script, sizeof script, "%s/ws/echo_python.py", RP_TESTS_DIR);
    char *argv[] = {py, script, NULL, NULL};
    run_client(argv, 2);
}

/* Starts 'rel' with 'args' and returns its WebSocket port, after checking
   the two first lines name the same address. */
static uint16_t start_with_ws(struct cu_child *c, const char *rel,
                              const char *const *args)
{
    char path[PATH_MAX + 64], first[256], second[256];
    char *argv[16] = {path};
    int n = 1;
    cu_program(path, sizeof path, rel);
    for (; *args && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    cu_start(c, argv, true);
    cu_read_line(c->out, first, sizeof first);
    uint16_t port = cu_listening_port(first);
    cu_read_line(c->out, second, sizeof second);
    const char *colon = strrchr(second, ':');
    if (strncmp(second, "ws listening on 127.0.0.1:", 26) != 0 || !colon)
        fail_msg("second line '%s' after '%s'", second, first);
    uint16_t ws = (uint16_t)atoi(colon + 1);
    assert_true(ws > 0 && ws != port);
    return ws;
}

static void programs_take_ws_port_and_print_the_ws_line(void **state)
{
    (void)state;
    /* ringport-game, flag. */
    struct cu_child c;
    const char *game[] = {"--port",     "0",         "--backend", backend,
                          "--no-stats", "--ws-port", "0",         NULL};
    int fd = wu_connect(start_with_ws(&c, "examples/game/ringport-game", game));
    close(fd);
    cu_stop(&c);
    /* ringport-echo, INI key. */
    char ini[] = "/tmp/rp-ws-ini-XXXXXX";
    int ifd = mkstemp(ini);
    assert_true(ifd >= 0);
    const char *text = "[echo]\nws_port = 0\n";
    assert_int_equal(write(ifd, text, strlen(text)), (ssize_t)strlen(text));
    close(ifd);
    const char *echo[] = {"--port",     "0",        "--backend", backend,
                          "--no-stats", "--config", ini,         NULL};
    fd = wu_connect(start_with_ws(&c, CU_ECHO, echo));
    wu_ping_frame(fd, 3);
    close(fd);
    cu_echo_stop(&c);
    unlink(ini);
    /* Raw mode has no WebSocket listener; a bad port is refused. */
    const char *raw[] = {"--mode",    "raw", "--port", "0",
                         "--ws-port", "0",   NULL};
    cu_expect_refusal(CU_ECHO, raw, "ws_enabled");
    const char *bad[] = {"--port", "0", "--ws-port", "70000", NULL};
    cu_expect_refusal(CU_ECHO, bad, "--ws-port");
}

int main(int argc, char **argv)
{
    backend = cu_backend(argc, argv);
    cu_find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(node_ws_client_echoes_pings_and_closes,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(
            python_websockets_client_echoes_pings_and_closes,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(programs_take_ws_port_and_print_the_ws_line,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
