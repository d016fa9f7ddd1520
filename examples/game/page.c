/*
 * The spectator page on ringport-game's HTTP endpoint (--metrics): GET /
 * (web/spectator/index.html), /spectator.js (web/spectator/spectator.ts
 * and the generated protocol module, compiled by tsc into one file) and
 * /spectator.json ({"ws_port": N}, the WebSocket port the page connects
 * to). The bytes are embedded at build time (cmake/embed.cmake), so the
 * server needs no file at run time. A build without tsc has no page: / then
 * says so in one line of text.
 */
#include "page.h"

#include <stdio.h>
#include <string.h>

/* Generated: spectator_page.c in the build folder. */
extern const unsigned char spect_page_html[], spect_page_js[];
extern const size_t spect_page_html_len, spect_page_js_len;

static const char not_built[] =
    "ringport-game: the spectator page was not built (tsc was missing at "
    "build time; scripts/deps.sh browser installs it)\n";

bool spect_page_built(void)
{
    return spect_page_js_len > 0;
}

int spect_page_serve(struct rp_metrics *m, uint16_t ws_port)
{
    /* Registered once, before the endpoint serves it, and kept until
       rp_metrics_destroy: static. */
    static char json[64];
    int r;
    snprintf(json, sizeof json, "{\"ws_port\": %u}\n", ws_port);
    if (!spect_page_built())
        return rp_metrics_add_file(m, "/", "text/plain; charset=utf-8",
                                   not_built, sizeof not_built - 1);
    r = rp_metrics_add_file(m, "/", "text/html; charset=utf-8", spect_page_html,
                            spect_page_html_len);
    if (r == 0)
        r = rp_metrics_add_file(m, "/spectator.js",
                                "text/javascript; charset=utf-8", spect_page_js,
                                spect_page_js_len);
    if (r == 0)
        r = rp_metrics_add_file(m, "/spectator.json", "application/json", json,
                                strlen(json));
    return r;
}
