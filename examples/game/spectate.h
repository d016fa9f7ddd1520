/*
 * Spectators (docs/game.md, "Spectators"): what each content publishes for
 * them, and the spectator content that watches.
 *
 * The one-thread-per-content rule holds: no thread reads another content's
 * rooms or runs. Each content (lobby, pvp, dungeon) fills a small summary
 * of its own state on its own tick, at most once per SPECT_PERIOD_MS, and
 * publishes it on its spect_board, a triple buffer with one writer (that
 * content's thread) and one reader (the spectator content's thread). The
 * spectator content composes one SPECTATOR_STATE from the three latest
 * summaries every SPECT_PERIOD_MS and broadcasts it, one shared packet, to
 * every spectator.
 *
 * Why a triple buffer and not a seqlock or a mutex: neither side ever
 * waits or retries (the writer always has a free buffer, the reader always
 * has a whole one), a summary is handed over by one atomic exchange that
 * also orders its bytes (acquire/release), so ThreadSanitizer sees no race,
 * and a slow reader costs the writer nothing.
 */
#ifndef RINGPORT_GAME_SPECTATE_H
#define RINGPORT_GAME_SPECTATE_H

#include "protocol.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Spectators get a state every SPECT_PERIOD_MS at the most (5 a second);
   contents publish their summaries at the same pace. */
#define SPECT_PERIOD_MS 200
/* Default limit of spectators at once (--max-spectators). */
#define SPECT_DEFAULT_MAX 64

enum spect_content { SPECT_LOBBY, SPECT_PVP, SPECT_DUNGEON, SPECT_CONTENTS };

/* One content's summary. */
struct spect_snap {
    uint32_t online; /* players inside (lobby: logged in) */
    uint32_t live;   /* pvp: arenas fighting; dungeon: runs started */
    uint32_t n;      /* listed in arena / run (the oldest 'n' of 'live') */
    uint32_t nmh;    /* dungeon: monster_hp used (each run's in order) */
    struct gm_spect_arena arena[GM_SPECT_ARENAS];
    struct gm_spect_run run[GM_SPECT_RUNS];
    uint16_t monster_hp[GM_SPECT_MONSTERS];
};

/*
 * A triple buffer: buf[back] is the writer's, buf[front] the reader's,
 * the third is parked in 'middle' (its index, | SPECT_FRESH if it holds a
 * summary the reader has not taken yet). back, front and middle & 3 are
 * always three different indices.
 */
#define SPECT_FRESH 4u
struct spect_board {
    struct spect_snap buf[3];
    _Atomic uint32_t middle;
    uint32_t back;  /* writer's thread only */
    uint32_t ticks; /* writer's: ticks since the last publish */
    uint32_t front; /* reader's thread only */
};

void spect_board_init(struct spect_board *b);
/* Writer: true once per SPECT_PERIOD_MS of ticks of 'tick_ms'. */
bool spect_board_due(struct spect_board *b, uint32_t tick_ms);
/* Writer: the buffer to fill (zeroed), then publish it. */
struct spect_snap *spect_board_begin(struct spect_board *b);
void spect_board_publish(struct spect_board *b);
/* Reader: the latest published summary (all zero before the first). */
const struct spect_snap *spect_board_latest(struct spect_board *b);

#endif
