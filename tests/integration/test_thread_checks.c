/*
 * RP_ASSERT_THREAD fails loudly: a call into code one thread owns, made
 * from another thread, panics (SIGABRT with a log line) in Debug and
 * sanitizer builds instead of racing the owner. Each case runs in a forked
 * child so the abort is the child's; the parent checks how it died. In
 * builds where the checks compile out (RelWithDebInfo, Release) the cases
 * are skipped.
 *
 * The session case reaches into the server's internals (net/net.h): the
 * rp__session_* entry points are not public, and a wrong-thread call to
 * them is exactly what the check exists to catch.
 */
#include "server_util.h"

#include "net/net.h"

#include <signal.h>
#include <sys/wait.h>

#if defined(NDEBUG) && !defined(RP_CHECK_THREADS)
#define THREAD_CHECKS 0
#else
#define THREAD_CHECKS 1
#endif

/* Runs fn in a child; true if the child died of SIGABRT. */
static bool child_aborts(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0); /* no panic: the check did not fire */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* ---- an owned port's buffers, recycled from another thread ---------- */

static struct rp_buffers *child_bufs;

static void *recycle_elsewhere(void *arg)
{
    (void)arg;
    rp_port_buffer_recycle(child_bufs, 0);
    return NULL;
}

static void owned_port_recycle_from_another_thread(void)
{
    struct rp_port_config cfg = {.backend = su_kind, .flags = RP_PORT_OWNED};
    struct rp_port *p;
    if (rp_port_create(&cfg, &p) < 0 ||
        rp_port_buffers_create(p, 4, 64, &child_bufs) < 0)
        _exit(3);
    pthread_t th;
    pthread_create(&th, NULL, recycle_elsewhere, NULL);
    pthread_join(th, NULL);
}

static void owned_port_buffer_recycle_off_its_owner_panics(void **state)
{
    (void)state;
    if (!THREAD_CHECKS)
        skip();
    assert_true(child_aborts(owned_port_recycle_from_another_thread));
}

/* ---- a session entry point, called off its I/O thread --------------- */

static void session_tick_from_the_test_thread(void)
{
    struct su_events ev;
    su_events_reset(&ev);
    struct rp_server_config cfg;
    su_config(&cfg, &ev);
    struct rp_server *srv;
    if (rp_server_create(&cfg, &srv) < 0 || rp_server_start(srv) < 0)
        _exit(3);
    int fd = su_connect(rp_server_port(srv));
    SU_WAIT(atomic_load(&ev.joins) == 1);
    if (atomic_load(&ev.joins) != 1)
        _exit(4);
    pthread_mutex_lock(&ev.lock);
    rp_sid sid = ev.joined[0];
    pthread_mutex_unlock(&ev.lock);
    struct rp_session *s = &srv->table.slots[rp_sid_slot(sid)];
    /* The test thread owns no session: this must panic. */
    rp__session_tick(s->owner, s);
    close(fd);
}

static void session_entry_point_off_its_io_thread_panics(void **state)
{
    (void)state;
    if (!THREAD_CHECKS)
        skip();
    assert_true(child_aborts(session_tick_from_the_test_thread));
}

/* The same calls on their own threads pass: the checks name the owner. */
static void owner_thread_calls_pass_the_checks(void **state)
{
    (void)state;
    struct rp_port_config cfg = {.backend = su_kind, .flags = RP_PORT_OWNED};
    struct rp_port *p;
    struct rp_buffers *bufs;
    assert_int_equal(rp_port_create(&cfg, &p), 0);
    assert_int_equal(rp_port_buffers_create(p, 4, 64, &bufs), 0);
    struct rp_op nop;
    rp_op_init(&nop);
    assert_int_equal(rp_port_nop(p, &nop), 0);
    struct rp_completion c;
    assert_int_equal(rp_port_get(p, &c, SU_WAIT_MS), 0); /* pumps */
    assert_ptr_equal(c.op, &nop);
    rp_port_destroy(p);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(owned_port_buffer_recycle_off_its_owner_panics),
        cmocka_unit_test(session_entry_point_off_its_io_thread_panics),
        cmocka_unit_test(owner_thread_calls_pass_the_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
