/*
 * Fuzz target for config files: arbitrary bytes go through the same parse
 * path as ringport-echo's --config (rp_config_parse over libinih, with the
 * server's keys and the program's own). It must never crash, and every
 * error must be one line naming the file and a line number.
 */
#include <ringport/config.h>
#include <ringport/server.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rp_server_config cfg;
    char listen[64], metrics[80] = "", err[256];
    bool stats = true;
    struct rp_config_key keys[RP_CONFIG_SERVER_KEYS + 2];
    rp_server_config_init(&cfg);
    size_t n = rp_config_server_keys(&cfg, listen, sizeof listen, keys,
                                     RP_CONFIG_SERVER_KEYS);
    keys[n++] = (struct rp_config_key){"metrics", RP_CONFIG_ENDPOINT, metrics,
                                       sizeof metrics, NULL};
    keys[n++] =
        (struct rp_config_key){"stats", RP_CONFIG_BOOL, &stats, 0, NULL};
    int r = rp_config_parse((const char *)data, size, "fuzz.ini", "echo", keys,
                            n, err, sizeof err);
    if (r < 0 && (strncmp(err, "fuzz.ini:", 9) != 0 || strchr(err, '\n')))
        abort();
    if (strlen(listen) >= sizeof listen || strlen(metrics) >= sizeof metrics)
        abort();
    /* Whatever was set must not break validation (it may refuse). */
    (void)rp_server_config_validate(&cfg, err, sizeof err);
    return 0;
}
