/*
 * Fuzz target for the cluster's NATS chat decoder (examples/game/
 * cluster_wire.c): whatever arrives on the chat subjects is untrusted. An
 * input either fails to decode or decodes to a line that passes LOGIN's
 * and CHAT's checks and encodes back to exactly the input's bytes (no
 * byte read that was not there, no two encodings of one line). Any
 * disagreement aborts.
 */
#include "../../examples/game/cluster_wire.c"
#include "../../examples/game/rules.c"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_chat c;
    if (cw_chat_decode(data, size, &c) < 0)
        return 0;
    uint8_t out[CW_CHAT_MAX];
    int n = cw_chat_encode(&c, out, sizeof out);
    if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
        abort();
    if (!gm_name_valid(c.from, c.from_len) ||
        !gm_text_valid(c.text, c.text_len) || c.seq == 0 ||
        strlen(c.from) != c.from_len || strlen(c.text) != c.text_len)
        abort();
    return 0;
}
