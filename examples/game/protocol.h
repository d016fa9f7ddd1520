/*
 * The game protocol of ringport-game (docs/protocol.md, "Game messages"):
 * message types, error codes, limits, and the encoders and decoders that
 * both the server and the bots (ringport-bench game) compile in. They are
 * generated from proto/game.schema by tools/gen/gen.py into gen/ (`make
 * gen`); this header is what the game, the bots and the tests include.
 *
 * Plain C on byte spans, with no ringport API, so the load tester keeps
 * its rule of depending on nothing it measures. Every field is
 * little-endian; strings are a u16 length then the bytes (as rp_packet
 * writes them), so a server may equally read them with rp_reader.
 *
 * gm_decode() judges a payload in three steps, and the server acts on
 * each result differently (docs/protocol.md has the table):
 *   -ENOMSG   type unknown to the protocol      -> error, then disconnect
 *   -EBADMSG  payload the wrong length          -> error, then disconnect
 *   -ERANGE   a field out of its range          -> error packet, stays
 * Semantics (a name taken, a message for another content, ...) are the
 * contents' business.
 */
#ifndef RINGPORT_GAME_PROTOCOL_H
#define RINGPORT_GAME_PROTOCOL_H

#include "gen/protocol_gen.h"

static inline struct gm_str gm_str_of(const char *s, size_t len)
{
    struct gm_str v = {s, (uint16_t)len};
    return v;
}

#endif
