/*
 * The spectator summaries' triple buffer (examples/game/spectate.c): one
 * writer thread publishing as fast as it can, one reader thread taking the
 * latest as fast as it can. Every summary the reader sees is whole (each
 * field of it written by the same publish: no torn read) and never older
 * than one it saw before, and the reader does see new ones. A "stress"
 * test: make tsan runs it under ThreadSanitizer, which would report the
 * hand-over if it were not ordered.
 */
#include "helpers.h"
#include "spectate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define READS 1000000
#define PUBLISHES_MAX 20000000u /* the writer's bound if the reader hangs */

static struct spect_board board;
static atomic_bool reader_done;
static uint32_t published; /* the writer's count, read after the join */

/* Summary number k: every field says k, so a mix of two shows. */
static void fill(struct spect_snap *s, uint32_t k)
{
    s->online = s->live = k;
    s->n = GM_SPECT_ARENAS;
    s->nmh = k;
    for (int i = 0; i < GM_SPECT_ARENAS; i++)
        s->arena[i] = (struct gm_spect_arena){.room = k, .tick = k};
    for (int i = 0; i < GM_SPECT_RUNS; i++)
        s->run[i].id = k;
    for (int i = 0; i < GM_SPECT_MONSTERS; i++)
        s->monster_hp[i] = (uint16_t)k;
}

/* Publishes for as long as the reader reads. */
static void *writer(void *arg)
{
    (void)arg;
    uint32_t k = 0;
    while (!atomic_load(&reader_done) && k < PUBLISHES_MAX) {
        fill(spect_board_begin(&board), ++k);
        spect_board_publish(&board);
    }
    published = k;
    return NULL;
}

static void summaries_are_whole_and_never_go_back(void **state)
{
    (void)state;
    pthread_t w;
    spect_board_init(&board);
    atomic_store(&reader_done, false);
    assert_int_equal(pthread_create(&w, NULL, writer, NULL), 0);
    uint32_t last = 0, changes = 0;
    for (int i = 0; i < READS; i++) {
        const struct spect_snap *s = spect_board_latest(&board);
        uint32_t k = s->online;
        assert_true(k >= last);
        changes += k > last;
        last = k;
        assert_int_equal(s->live, k);
        assert_int_equal(s->nmh, k);
        for (int a = 0; a < GM_SPECT_ARENAS; a++)
            assert_int_equal(s->arena[a].tick, k);
        for (int r = 0; r < GM_SPECT_RUNS; r++)
            assert_int_equal(s->run[r].id, k);
        assert_int_equal(s->monster_hp[GM_SPECT_MONSTERS - 1], (uint16_t)k);
    }
    atomic_store(&reader_done, true);
    assert_int_equal(pthread_join(w, NULL), 0);
    /* Once the writer has stopped, the reader gets its very last one. */
    assert_int_equal(spect_board_latest(&board)->online, published);
    assert_true(changes >= 1);
    fprintf(stderr, "reader saw %u different summaries of %u\n", changes,
            published);
}

static void before_any_publish_the_reader_sees_zeros(void **state)
{
    (void)state;
    spect_board_init(&board);
    const struct spect_snap *s = spect_board_latest(&board);
    assert_int_equal(s->online, 0);
    assert_int_equal(s->n, 0);
    /* A publish is seen once, and stays the latest until the next. */
    fill(spect_board_begin(&board), 7);
    spect_board_publish(&board);
    assert_int_equal(spect_board_latest(&board)->online, 7);
    assert_int_equal(spect_board_latest(&board)->online, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(before_any_publish_the_reader_sees_zeros),
        cmocka_unit_test(summaries_are_whole_and_never_go_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
