/*
 * Fuzz target for the game's generated decoder (examples/game/gen/, from
 * proto/game.schema): what a hostile client's frame reaches in
 * ringport-game. The input is a u16 type (little-endian), then the
 * payload. gm_decode must answer one of its four results, -ENOMSG exactly
 * for a type the schema does not have, and never read outside the
 * payload (ASan watches a copy of exactly its size). A payload it read to
 * the end (0 or -ERANGE) must encode back to the same bytes, unless a
 * string is over its schema limit (the decoder leaves text to the game,
 * the encoder refuses it), and its JSON form must be written whole.
 */
#include "../../examples/game/gen/protocol_gen.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size - 2 > 65535)
        return 0;
    uint16_t type = (uint16_t)(data[0] | data[1] << 8);
    size_t len = size - 2;
    uint8_t *payload = malloc(len ? len : 1);
    CHECK(payload);
    memcpy(payload, data + 2, len);

    struct gm_msg m;
    int r = gm_decode(type, payload, len, &m);
    bool known = strcmp(gm_type_name(type), "unknown") != 0;
    CHECK(r == 0 || r == -ENOMSG || r == -EBADMSG || r == -ERANGE);
    CHECK((r == -ENOMSG) == !known);
    if (r == 0 || r == -ERANGE) {
        uint8_t *again = malloc(len + 1);
        CHECK(again);
        int n = gm_encode(&m, again, len + 1);
        CHECK(n == (int)len || n == -EINVAL);
        if (n >= 0)
            CHECK(memcmp(again, payload, len) == 0);
        /* Every byte may become "\u00XX": six characters each. */
        size_t cap = 6 * len + 4096;
        char *json = malloc(cap);
        CHECK(json);
        int j = gm_to_json(&m, json, cap);
        CHECK(j > 0 && (size_t)j < cap && json[j] == '\0');
        free(json);
        free(again);
    }
    free(payload);
    return 0;
}
