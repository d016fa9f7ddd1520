/*
 * Program settings from INI files (libinih) and command-line flags, through
 * one table of keys. A program lists its keys (each pointing at the field it
 * sets), adds the server's own with rp_config_server_keys(), and hands the
 * table to rp_config_apply_args() for its command line and config file
 * (or to rp_config_load() and rp_config_set()), so a key means the same
 * thing in both places.
 *
 * Errors come back as one line in 'err' (never logged here, never exit):
 *     echo.ini:7: key 'max_sessions': wants a whole number 0..4294967295,
 *     got 'many'
 *     echo.ini:3: key 'colour': unknown
 *     echo.ini:9: syntax error (want 'key = value')
 * Ranges that depend on other settings stay the business of the validating
 * call (rp_server_config_validate).
 *
 * Thread: any, on tables no other thread uses.
 */
#ifndef RINGPORT_CONFIG_H
#define RINGPORT_CONFIG_H

#include <ringport/api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rp_server_config; /* <ringport/server.h> */

enum rp_config_kind {
    RP_CONFIG_STR,      /* char[size] at dest, NUL-terminated */
    RP_CONFIG_U16,      /* uint16_t, decimal */
    RP_CONFIG_U32,      /* uint32_t, decimal */
    RP_CONFIG_BOOL,     /* bool: 1/true/yes/on, 0/false/no/off */
    RP_CONFIG_ENUM,     /* int (or an int-sized enum): one of 'choices' */
    RP_CONFIG_ENDPOINT, /* char[size]: "ADDR:PORT", "[V6]:PORT" or "" (off),
                           checked by rp_config_parse_endpoint */
};

/* A name an ENUM key accepts and the value it stores. */
struct rp_config_choice {
    const char *name;
    int value;
};

struct rp_config_key {
    const char *name; /* "max_sessions"; its flag is "--max-sessions" */
    enum rp_config_kind kind;
    void *dest;
    size_t size; /* STR, ENDPOINT: bytes at dest with the NUL */
    const struct rp_config_choice *choices; /* ENUM: ends with a NULL name */
};

/* Caps on what rp_config_load reads and on one line of it. */
#define RP_CONFIG_MAX_FILE (1u << 20)
#define RP_CONFIG_MAX_LINE 198

/* The key called 'name', or NULL. */
RP_API const struct rp_config_key *
rp_config_find(const struct rp_config_key *keys, size_t n, const char *name);

/*
 * Sets the key called 'name' from the text 'value'. Returns 0, -ENOENT for
 * an unknown key ("unknown" in err), or -EINVAL for a bad value ("wants
 * raw or framed, got 'chunky'"); the destination is untouched then. The
 * caller says where the value came from ("--mode wants ...").
 */
RP_API int rp_config_set(const struct rp_config_key *keys, size_t n,
                         const char *name, const char *value, char *err,
                         size_t errlen);

/*
 * Parses INI text (need not be NUL-terminated; NUL bytes end a line).
 * Keys sit at the top or under [section] ('section' may be NULL: top only).
 * 'file' names the text in error lines. Reports the first error (keys may
 * have been set, before it and after it). Returns 0, -EINVAL (err:
 * "FILE:LINE: ...") or -ENOMEM.
 */
RP_API int rp_config_parse(const char *text, size_t len, const char *file,
                           const char *section,
                           const struct rp_config_key *keys, size_t n,
                           char *err, size_t errlen);

/* Reads the file at 'path' (at most RP_CONFIG_MAX_FILE bytes) and parses
   it as rp_config_parse does. Also -errno if it cannot be read, -EFBIG. */
RP_API int rp_config_load(const char *path, const char *section,
                          const struct rp_config_key *keys, size_t n, char *err,
                          size_t errlen);

/*
 * A flag of a command line that is not a key's own flag. With 'key' set it
 * takes no value and sets that key to 'value' ("--no-stats": "stats" =
 * "false"); with 'key' NULL the flag is refused as unknown (a key that a
 * program takes from its file but not from its command line).
 */
struct rp_config_flag {
    const char *flag; /* "--no-stats" */
    const char *key;
    const char *value;
};

/* rp_config_apply_args: --help or -h was asked for. */
#define RP_CONFIG_HELP 1

/*
 * Applies a command line, argv[1..argc-1], to the keys. "--long-flag VALUE"
 * sets the key "long_flag" (the flag joins words with '-' only);
 * "--config FILE" loads FILE (rp_config_load with 'section'; the last one
 * given) before any flag is set, so that every flag overrides it; 'flags'
 * (ends with a NULL flag; may be NULL) adds switches and hides keys.
 * Every argument is checked (a known flag, with its value) before the file
 * is loaded and the flags are set, in order. Returns 0; RP_CONFIG_HELP if
 * "--help" or "-h" comes before any unknown flag (nothing set); -ENOENT
 * ("unknown flag '--colour' (try --help)"); -EINVAL ("--port needs a
 * value (try --help)", "--mode wants raw or framed, got 'chunky'"); or
 * the error of rp_config_load (its line in 'err'). Keys may have been set
 * when it fails.
 */
RP_API int rp_config_apply_args(const struct rp_config_key *keys, size_t n,
                                const struct rp_config_flag *flags,
                                const char *section, int argc,
                                char *const argv[], char *err, size_t errlen);

/*
 * Parses "ADDR:PORT" (numeric IPv4), "[ADDR]:PORT" (numeric IPv6) or
 * ":PORT" (every IPv4 interface) into a socket address; PORT may be 0.
 * Returns 0 or -EINVAL. 'ss'/'len' may be NULL (just check).
 */
RP_API int rp_config_parse_endpoint(const char *text,
                                    struct sockaddr_storage *ss,
                                    socklen_t *len);

/*
 * The server's settings as keys: listen (into 'listen', which becomes
 * cfg->listen_addr; its current text is kept), port, mode (framed|raw),
 * threads, backend (auto|uring|epoll), max_sessions, max_payload,
 * send_queue_limit, idle_timeout_ms, frame_deadline_ms,
 * first_packet_deadline_ms, max_iov, stop_drain_ms, spin_us,
 * recv_buffer_size. Writes at most 'cap' keys to 'out' and returns how many
 * it has in all (RP_CONFIG_SERVER_KEYS).
 */
#define RP_CONFIG_SERVER_KEYS 19
RP_API size_t rp_config_server_keys(struct rp_server_config *cfg, char *listen,
                                    size_t listen_size,
                                    struct rp_config_key *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
