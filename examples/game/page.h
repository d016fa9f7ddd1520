/*
 * The spectator page served by ringport-game (page.c; docs/game.md,
 * "Spectators").
 */
#ifndef RINGPORT_GAME_PAGE_H
#define RINGPORT_GAME_PAGE_H

#include <ringport/metrics.h>
#include <stdbool.h>
#include <stdint.h>

/* False when the build had no tsc (/ then serves a one-line notice). */
bool spect_page_built(void);
/* Adds /, /spectator.js and /spectator.json (naming 'ws_port', 0 if the
   game has no WebSocket listener) to 'm'. Returns 0 or -errno. */
int spect_page_serve(struct rp_metrics *m, uint16_t ws_port);

#endif
