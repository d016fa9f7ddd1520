/*
 * Encoder and decoder of the cluster's NATS messages (cluster_wire.h has
 * the layout). The decoder checks every length against what is left
 * before reading, and the name and text with the same rules as LOGIN and
 * CHAT (rules.c), so a line from NATS can only say what a client of this
 * shard could have said.
 */
#include "cluster_wire.h"

#include "rules.h"

#include <errno.h>
#include <string.h>

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int cw_chat_encode(const struct cw_chat *c, uint8_t *out, size_t cap)
{
    if (!gm_name_valid(c->from, c->from_len) ||
        !gm_text_valid(c->text, c->text_len))
        return -EINVAL;
    size_t n = 1 + 4 + 8 + 8 + 4 + 1 + c->from_len + 2 + c->text_len;
    if (n > cap)
        return -EINVAL;
    uint8_t *p = out;
    *p++ = CW_VERSION;
    put_le(p, c->origin, 4), p += 4;
    put_le(p, c->epoch, 8), p += 8;
    put_le(p, c->seq, 8), p += 8;
    put_le(p, c->channel, 4), p += 4;
    *p++ = c->from_len;
    memcpy(p, c->from, c->from_len), p += c->from_len;
    put_le(p, c->text_len, 2), p += 2;
    memcpy(p, c->text, c->text_len), p += c->text_len;
    return (int)(p - out);
}

int cw_chat_decode(const uint8_t *p, size_t n, struct cw_chat *out)
{
    const uint8_t *end = p + n;
    if (n < 1 + 4 + 8 + 8 + 4 + 1 || p[0] != CW_VERSION)
        return -EBADMSG;
    p++;
    out->origin = (uint32_t)get_le(p, 4), p += 4;
    out->epoch = get_le(p, 8), p += 8;
    out->seq = get_le(p, 8), p += 8;
    out->channel = (uint32_t)get_le(p, 4), p += 4;
    out->from_len = *p++;
    if (out->from_len >= sizeof out->from || (size_t)(end - p) < out->from_len)
        return -EBADMSG;
    memcpy(out->from, p, out->from_len), p += out->from_len;
    out->from[out->from_len] = '\0';
    if (end - p < 2)
        return -EBADMSG;
    out->text_len = (uint16_t)get_le(p, 2), p += 2;
    if (out->text_len >= sizeof out->text || (size_t)(end - p) != out->text_len)
        return -EBADMSG;
    memcpy(out->text, p, out->text_len);
    out->text[out->text_len] = '\0';
    if (!gm_name_valid(out->from, out->from_len) ||
        !gm_text_valid(out->text, out->text_len) || out->seq == 0)
        return -EBADMSG;
    return 0;
}
