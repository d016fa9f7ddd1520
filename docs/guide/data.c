/*
 * Guide step 2 (docs/guide.md): a record per player, kept as the session's
 * data. The first frame a client sends is its name; every frame after it
 * goes to everyone, the name in front ("name: text").
 *
 *     guide-data [PORT] (default 7000); frames: docs/protocol.md
 */
#include <ringport/server.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 16

/* ANCHOR: player */
struct player {
    char name[MAX_NAME + 1]; /* empty until the first frame */
    uint32_t said;           /* frames relayed for it */
};
/* ANCHOR_END: player */

static rp_sid room[10000]; /* 1 I/O thread (the default): no lock */
static size_t n;

/* ANCHOR: on_join */
static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    struct player *p = calloc(1, sizeof *p);
    if (!p || rp_session_set_data(srv, sid, p) < 0) {
        free(p);
        rp_server_disconnect(srv, sid); /* on_leave still runs: data NULL */
        return;
    }
    room[n++] = sid;
}
/* ANCHOR_END: on_join */

/* ANCHOR: on_message */
static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    struct player *p = data; /* this session's record: no lookup */
    struct rp_packet *out;
    if (!p->name[0]) {
        size_t len = msg->len < MAX_NAME ? msg->len : MAX_NAME;
        memcpy(p->name, msg->payload, len);
        p->name[len] = '\0';
        return;
    }
    size_t name = strlen(p->name);
    if (rp_packet_create(name + 2 + msg->len, msg->type, &out) < 0)
        return;
    rp_packet_put_bytes(out, p->name, name);
    rp_packet_put_bytes(out, ": ", 2);
    rp_packet_put_bytes(out, msg->payload, msg->len);
    rp_server_broadcast(srv, room, n, out);
    rp_packet_unref(out);
    p->said++;
}
/* ANCHOR_END: on_message */

/* ANCHOR: on_leave */
static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    struct player *p = data;
    for (size_t i = 0; i < n; i++)
        if (room[i] == sid)
            room[i] = room[--n];
    if (p)
        printf("%s left (%s) after %u lines\n", p->name,
               rp_leave_reason_name(reason), p->said);
    free(p); /* the session's last callback: nothing sees 'p' after it */
}
/* ANCHOR_END: on_leave */

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
    sigwait(&stop, &sig);
    rp_server_destroy(srv);
    return 0;
}
