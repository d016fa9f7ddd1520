/*
 * The cluster's messages on NATS (docs/cluster.md, "Cross-shard chat"):
 * encoded and decoded here, with no NATS and no engine in sight, so the
 * decoder can be fuzzed on its own (tests/fuzz/fuzz_cluster_wire.c).
 * Everything that arrives from NATS is untrusted input: another version,
 * a stray publisher, a broken shard.
 *
 * A chat line, subject "rp.chat.<channel>", little-endian:
 *     u8  version (1)
 *     u32 origin shard
 *     u64 origin epoch (its start: a restarted shard counts afresh)
 *     u64 sequence (1, 2, ... per origin epoch, over all channels)
 *     u32 channel
 *     u8  name length, name (3..16 of [A-Za-z0-9_])
 *     u16 text length, text (1..200, no control characters)
 * and nothing after it.
 */
#ifndef RINGPORT_GAME_CLUSTER_WIRE_H
#define RINGPORT_GAME_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define CW_VERSION 1
#define CW_CHAT_MAX (1 + 4 + 8 + 8 + 4 + 1 + 16 + 2 + 200)

struct cw_chat {
    uint32_t origin;
    uint64_t epoch, seq;
    uint32_t channel;
    uint8_t from_len;
    uint16_t text_len;
    char from[17];  /* NUL-terminated */
    char text[201]; /* NUL-terminated */
};

/* Encodes 'c' into 'out' (CW_CHAT_MAX bytes suffice). Returns the length,
   or -EINVAL if a field is out of range. */
int cw_chat_encode(const struct cw_chat *c, uint8_t *out, size_t cap);
/* Decodes one chat line. Returns 0, or -EBADMSG for anything but exactly
   one valid line (wrong version, short, trailing bytes, a name or text
   that LOGIN or CHAT would refuse). */
int cw_chat_decode(const uint8_t *p, size_t n, struct cw_chat *out);

#endif
