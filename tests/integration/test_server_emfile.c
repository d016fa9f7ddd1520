/*
 * Out of file descriptors (EMFILE): with RLIMIT_NOFILE lowered so this
 * process (server and clients alike) cannot open one more descriptor,
 * connections arrive anyway. The clients already connected must be served
 * as before, the accept thread must not spin (the process's CPU time over
 * about a second stays a small part of the wall time: a resource check, not
 * a latency one), the failures are counted, and accepting resumes once
 * descriptors are free again.
 */
#include "server_util.h"

#include <dirent.h>

#define OLD_CLIENTS 4
#define NEWCOMERS 3
#define MAX_FILLERS 4096

static struct su_events ev;

/* The highest descriptor open in this process. */
static int highest_fd(void)
{
    int hi = -1;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != own && fd > hi)
            hi = fd;
    }
    closedir(d);
    return hi;
}

static void exhaustion_spares_old_clients_and_accepting_resumes(void **state)
{
    (void)state;
    static int filler[MAX_FILLERS];
    int old[OLD_CLIENTS], newcomer[NEWCOMERS], nfill = 0;
    struct rp_server_config cfg;
    struct rlimit saved, low;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    cfg.max_sessions = 64;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    for (int i = 0; i < OLD_CLIENTS; i++) {
        old[i] = su_connect(port);
        su_ping(old[i], (uint16_t)i);
    }
    /* The newcomers' sockets exist before the limit drops: connect(2)
       needs no new descriptor. */
    for (int i = 0; i < NEWCOMERS; i++) {
        newcomer[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(newcomer[i] >= 0);
    }

    /* No free descriptor below the limit: fill the holes too. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)highest_fd() + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (nfill < MAX_FILLERS) {
        int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (f < 0)
            break;
        filler[nfill++] = f;
    }
    assert_true(nfill < MAX_FILLERS);
    assert_int_equal(open("/dev/null", O_RDONLY | O_CLOEXEC), -1);
    assert_int_equal(errno, EMFILE);

    /* Newcomers arrive one by one across about a second of EMFILE. */
    uint64_t cpu0 = su_cpu_us(), wall0 = su_now_ms();
    for (int i = 0; i < NEWCOMERS; i++) {
        int r = connect(newcomer[i], (struct sockaddr *)&sa, sizeof sa);
        assert_true(r == 0 || errno == ECONNREFUSED || errno == EAGAIN);
        for (int k = 0; k < OLD_CLIENTS; k++)
            su_ping(old[k], (uint16_t)(10 + k)); /* still served */
        su_sleep_ms(330);
    }
    uint64_t cpu_us = su_cpu_us() - cpu0, wall_ms = su_now_ms() - wall0;
    struct rp_server_stats s;
    SU_WAIT((su_stats(srv, &s), s.accept_errors > 0));
    uint64_t sessions_during = s.sessions;

    /*
     * Each newcomer is served or closed, never left hanging. At most one is
     * served: a thread already blocked in accept4() reserved its descriptor
     * number before the limit dropped, so the first newcomer may get it.
     */
    int served = 0;
    for (int i = 0; i < NEWCOMERS; i++) {
        uint8_t hello[4 + 5], buf[16];
        uint16_t t;
        su_frame(hello, 50, "hello", 5);
        (void)send(newcomer[i], hello, sizeof hello, MSG_NOSIGNAL);
        int r = su_read_frame(newcomer[i], &t, buf, sizeof buf, 2000);
        if (r == 5 && t == 50)
            served++;
        else
            assert_true(r == -ECONNABORTED || r == -ECONNRESET);
    }

    /* Descriptors back: close the fillers, restore the limit. */
    for (int i = 0; i < nfill; i++)
        close(filler[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);

    printf("EMFILE: cpu %llu us over %llu ms; accept errors %llu, refused "
           "%llu, accepts %llu, sessions %llu, newcomers served %d\n",
           (unsigned long long)cpu_us, (unsigned long long)wall_ms,
           (unsigned long long)s.accept_errors, (unsigned long long)s.refused,
           (unsigned long long)s.accepts, (unsigned long long)sessions_during,
           served);
    assert_true(s.accept_errors > 0);
    assert_true(served <= 1);
    assert_int_equal(sessions_during, OLD_CLIENTS + (uint64_t)served);
    /* Generous: a spinning accept loop burns a whole core (100 %). */
    assert_true(cpu_us < wall_ms * 1000 * 30 / 100);

    /* Accepting resumes (after the server's back-off). */
    uint64_t joins = atomic_load(&ev.joins);
    int fresh = -1;
    for (int attempt = 0; attempt < 10 && fresh < 0; attempt++) {
        int fd = su_connect(port);
        SU_WAIT(atomic_load(&ev.joins) > joins || su_is_closed_now(fd));
        /* A session may belong to a newcomer accepted late: try a ping. */
        uint16_t t;
        uint8_t buf[16];
        su_send_frame(fd, 99, "resume", 6);
        int r = su_read_frame(fd, &t, buf, sizeof buf, 2000);
        if (r == 6 && t == 99)
            fresh = fd;
        else
            close(fd);
        joins = atomic_load(&ev.joins);
    }
    assert_true(fresh >= 0);
    for (int k = 0; k < OLD_CLIENTS; k++)
        su_ping(old[k], (uint16_t)(20 + k));

    close(fresh);
    for (int i = 0; i < OLD_CLIENTS; i++)
        close(old[i]);
    for (int i = 0; i < NEWCOMERS; i++)
        close(newcomer[i]);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_sessions(srv), 0);
    su_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exhaustion_spares_old_clients_and_accepting_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
