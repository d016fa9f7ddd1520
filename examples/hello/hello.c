/* A chat room: each frame a client sends goes to every client, unchanged.
   ringport-hello [PORT] (default 7000); frames: docs/protocol.md. */
#include <ringport/server.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static rp_sid room[10000]; /* max_sessions' default; 1 I/O thread: no lock */
static size_t n;

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    room[n++] = sid;
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    struct rp_packet *pkt;
    if (rp_message_keep(msg, &pkt) == 0) { /* one copy, n references */
        rp_server_broadcast(srv, room, n, pkt);
        rp_packet_unref(pkt);
    }
}

static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    for (size_t i = 0; i < n; i++)
        if (room[i] == sid)
            room[i] = room[--n];
}

int main(int argc, char **argv)
{
    struct rp_server_config cfg;
    struct rp_server *srv;
    sigset_t stop;
    int sig;
    rp_server_config_init(&cfg);
    cfg.port = argc > 1 ? (uint16_t)atoi(argv[1]) : 7000;
    cfg.cb = (struct rp_server_callbacks){
        .on_join = on_join, .on_message = on_message, .on_leave = on_leave};
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* its threads inherit it */
    if (rp_server_create(&cfg, &srv) < 0 || rp_server_start(srv) < 0)
        return 1;
    printf("listening on %s:%u\n", cfg.listen_addr, rp_server_port(srv));
    fflush(stdout);
    sigwait(&stop, &sig); /* Ctrl-C or SIGTERM */
    rp_server_destroy(srv);
    return 0;
}
