/*
 * The server's settings as config keys (<ringport/config.h>), so every
 * program built on rp_server reads them under the same names from its INI
 * file and its flags. Ranges are rp_server_config_validate's business.
 */
#include <ringport/config.h>
#include <ringport/server.h>

static const struct rp_config_choice mode_choices[] = {
    {"raw", RP_SERVER_RAW},
    {"framed", RP_SERVER_FRAMED},
    {NULL, 0},
};

static const struct rp_config_choice backend_choices[] = {
    {"auto", RP_BACKEND_AUTO},
    {"uring", RP_BACKEND_URING},
    {"epoll", RP_BACKEND_EPOLL},
    {NULL, 0},
};

/* The enums are written through an int. */
_Static_assert(sizeof(enum rp_server_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum rp_backend_kind) == sizeof(int), "enum size");

size_t rp_config_server_keys(struct rp_server_config *cfg, char *listen,
                             size_t listen_size, struct rp_config_key *out,
                             size_t cap)
{
#define U32(key, field)                                                        \
    {                                                                          \
        key, RP_CONFIG_U32, &cfg->field, 0, NULL                               \
    }
    const struct rp_config_key keys[RP_CONFIG_SERVER_KEYS] = {
        {"listen", RP_CONFIG_STR, listen, listen_size, NULL},
        {"port", RP_CONFIG_U16, &cfg->port, 0, NULL},
        {"mode", RP_CONFIG_ENUM, &cfg->mode, 0, mode_choices},
        U32("threads", io_threads),
        {"backend", RP_CONFIG_ENUM, &cfg->backend, 0, backend_choices},
        U32("max_sessions", max_sessions),
        U32("max_payload", max_payload),
        {"reject_empty", RP_CONFIG_BOOL, &cfg->reject_empty, 0, NULL},
        {"type_min", RP_CONFIG_U16, &cfg->type_min, 0, NULL},
        {"type_max", RP_CONFIG_U16, &cfg->type_max, 0, NULL},
        U32("send_queue_limit", send_queue_limit),
        U32("idle_timeout_ms", idle_timeout_ms),
        U32("frame_deadline_ms", frame_deadline_ms),
        U32("first_packet_deadline_ms", first_packet_deadline_ms),
        U32("max_iov", max_iov),
        U32("stop_drain_ms", stop_drain_ms),
        U32("spin_us", spin_us),
        U32("recv_buffer_size", recv_buffer_size),
        U32("resume_grace_ms", resume_grace_ms),
    };
#undef U32
    if (listen_size > 0 && cfg->listen_addr && listen != cfg->listen_addr) {
        size_t n = 0;
        while (cfg->listen_addr[n] && n + 1 < listen_size) {
            listen[n] = cfg->listen_addr[n];
            n++;
        }
        listen[n] = '\0';
    }
    cfg->listen_addr = listen;
    for (size_t i = 0; i < RP_CONFIG_SERVER_KEYS && i < cap; i++)
        out[i] = keys[i];
    return RP_CONFIG_SERVER_KEYS;
}
