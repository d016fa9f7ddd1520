/* ringport-bench's latency histogram (tools/bench/hist.c): percentiles of
   known distributions, and never above the max nor below the min. */
#include "helpers.h"

#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double ps[] = {0,    0.001, 0.01, 0.1,   0.25,   0.5,
                            0.75, 0.9,   0.99, 0.999, 0.9999, 1};
#define NPS (sizeof ps / sizeof ps[0])

/* Records 'n' values into a fresh histogram and merges it into 's'. */
static void fill(struct hist_sum *s, const uint64_t *v, size_t n)
{
    struct hist *h = calloc(1, sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        hist_record(h, v[i]);
    hist_sum_clear(s);
    hist_sum_add(s, h);
    free(h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted 'v' (the rank rule hist.c uses). */
static double exact(const uint64_t *v, size_t n, double p)
{
    if (p <= 0)
        return (double)v[0];
    if (p >= 1)
        return (double)v[n - 1];
    size_t want = (size_t)(p * (double)n + 0.5);
    return (double)v[want ? want - 1 : 0];
}

/*
 * Every percentile lies in [min, max], grows with p, and is within the
 * width of the true value's bucket (2^-6 of it, or 0 below 64 ns) of the
 * exact nearest-rank answer. Sorts 'v'.
 */
static void check_against_exact(uint64_t *v, size_t n)
{
    struct hist_sum s;
    fill(&s, v, n);
    qsort(v, n, sizeof *v, cmp_u64);
    assert_int_equal(s.count, n);
    assert_int_equal(s.min, v[0]);
    assert_int_equal(s.max, v[n - 1]);
    double prev = -1;
    for (size_t i = 0; i < NPS; i++) {
        double got = hist_percentile(&s, ps[i]);
        double want = exact(v, n, ps[i]);
        if (got < (double)s.min || got > (double)s.max || got < prev)
            fail_msg("p%g = %.1f outside [%llu, %llu] or below p of the "
                     "previous step %.1f",
                     ps[i] * 100, got, (unsigned long long)s.min,
                     (unsigned long long)s.max, prev);
        double tol = want < HIST_SUB ? 0 : want / HIST_SUB;
        if (fabs(got - want) > tol)
            fail_msg("p%g = %.1f, exact %.1f (tolerance %.1f)", ps[i] * 100,
                     got, want, tol);
        prev = got;
    }
}

static void an_empty_histogram_reports_zero(void **state)
{
    (void)state;
    struct hist_sum s;
    hist_sum_clear(&s);
    for (size_t i = 0; i < NPS; i++)
        assert_true(hist_percentile(&s, ps[i]) == 0);
}

static void a_single_value_is_every_percentile(void **state)
{
    (void)state;
    /* Exact buckets, bucket edges, a bucket's inside, the max, a
       value past the last bucket's start. */
    const uint64_t values[] = {0,       1,          63,        64,
                               65,      1000,       4333200,   4325376,
                               4390911, 1ull << 40, 1ull << 50};
    for (size_t j = 0; j < sizeof values / sizeof values[0]; j++) {
        for (size_t times = 1; times <= 1000; times *= 1000) {
            uint64_t *v = malloc(times * sizeof *v);
            assert_non_null(v);
            for (size_t i = 0; i < times; i++)
                v[i] = values[j];
            struct hist_sum s;
            fill(&s, v, times);
            for (size_t i = 0; i < NPS; i++) {
                double got = hist_percentile(&s, ps[i]);
                if (got != (double)values[j])
                    fail_msg("%zu x %llu: p%g = %.1f", times,
                             (unsigned long long)values[j], ps[i] * 100, got);
            }
            free(v);
        }
    }
}

/* The reported case: `error_probe ... p99 4358.1 max 4333.2` (us). Every
   value sat low in the bucket [4325376, 4390912) ns, whose middle,
   4358144, was printed as the p99. */
static void values_low_in_a_wide_bucket_stay_under_their_max(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint64_t v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = 4325376 + (uint64_t)i * (4333200 - 4325376) / (N - 1);
    struct hist_sum s;
    fill(&s, v, N);
    assert_int_equal(s.max, 4333200);
    for (size_t i = 0; i < NPS; i++) {
        double got = hist_percentile(&s, ps[i]);
        assert_true(got <= 4333200.0);
        assert_true(got >= 4325376.0);
    }
    check_against_exact(v, N);
}

/* And the mirror image: values high in a bucket never go below the min. */
static void values_high_in_a_wide_bucket_stay_over_their_min(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint64_t v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = 4390911 - (uint64_t)i % 7;
    struct hist_sum s;
    fill(&s, v, N);
    for (size_t i = 0; i < NPS; i++)
        assert_true(hist_percentile(&s, ps[i]) >= 4390905.0);
    check_against_exact(v, N);
}

static void a_uniform_distribution_is_read_back_within_a_bucket(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        v[i] = i + 1;
    check_against_exact(v, N);
    /* Evenly spread values come back almost exactly, not at a bucket's
       middle: the median of 1..100000 is 50000. */
    struct hist_sum s;
    fill(&s, v, N);
    assert_true(fabs(hist_percentile(&s, 0.5) - 50000) <= 1);
    assert_true(fabs(hist_percentile(&s, 0.99) - 99000) <= 1);
    free(v);
}

static void all_values_in_one_bucket_keep_their_order(void **state)
{
    (void)state;
    enum { N = 5000 };
    uint64_t seed = t_seed();
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    /* One bucket of the 2^20 group: [1048576, 1064960). */
    for (size_t i = 0; i < N; i++)
        v[i] = t_rand_range(&seed, 1048576 + 1000, 1048576 + 9000);
    check_against_exact(v, N);
    free(v);
}

static void extremes_and_two_far_apart_clusters(void **state)
{
    (void)state;
    enum { N = 2000 };
    uint64_t v[N];
    /* Half at 0 ns, half past the histogram's range (overflow bucket). */
    for (size_t i = 0; i < N; i++)
        v[i] = i % 2 ? 0 : (1ull << 45) + i;
    struct hist_sum s;
    fill(&s, v, N);
    assert_true(hist_percentile(&s, 0) == 0);
    assert_true(hist_percentile(&s, 0.25) == 0);
    assert_true(hist_percentile(&s, 0.5) == 0);
    assert_true(hist_percentile(&s, 1) == (double)((1ull << 45) + N - 2));
    /* The last bucket starts below 2^40 and has no end: past 2^40 ns
       (18 minutes) there is no resolution, only the bounds. */
    double p75 = hist_percentile(&s, 0.75);
    assert_true(p75 >= (double)(1ull << 39));
    assert_true(p75 <= (double)((1ull << 45) + N - 2));
    /* The largest value a uint64_t holds. */
    uint64_t top[3] = {UINT64_MAX, UINT64_MAX - 1, 5};
    fill(&s, top, 3);
    assert_true(hist_percentile(&s, 0.99) <= (double)UINT64_MAX);
    assert_true(hist_percentile(&s, 0.01) == 5);
}

static void merged_histograms_keep_the_overall_min_and_max(void **state)
{
    (void)state;
    struct hist *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    struct hist *empty = calloc(1, sizeof *empty);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(empty);
    for (uint64_t i = 0; i < 100; i++) {
        hist_record(a, 5000 + i);
        hist_record(b, 7000 + i);
    }
    struct hist_sum s;
    hist_sum_clear(&s);
    hist_sum_add(&s, empty);
    hist_sum_add(&s, b);
    hist_sum_add(&s, empty);
    hist_sum_add(&s, a);
    assert_int_equal(s.count, 200);
    assert_int_equal(s.min, 5000);
    assert_int_equal(s.max, 7099);
    assert_true(hist_percentile(&s, 0.25) >= 5000 &&
                hist_percentile(&s, 0.25) <= 5099);
    assert_true(hist_percentile(&s, 0.999) >= 7000 &&
                hist_percentile(&s, 0.999) <= 7099);
    free(a);
    free(b);
    free(empty);
}

static void random_distributions_match_the_exact_percentiles(void **state)
{
    (void)state;
    uint64_t seed = t_seed();
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    for (int round = 0; round < 40; round++) {
        /* Log-uniform over a random span: long tails like latencies
           (below 2^40: the last bucket has no width to be within). */
        unsigned lo_bits = (unsigned)t_rand_range(&seed, 0, 25);
        unsigned hi_bits = lo_bits + (unsigned)t_rand_range(&seed, 0, 14);
        size_t n = (size_t)t_rand_range(&seed, 1, N);
        for (size_t i = 0; i < n; i++) {
            unsigned bits = (unsigned)t_rand_range(&seed, lo_bits, hi_bits);
            uint64_t base = 1ull << bits;
            v[i] = base + t_rand_range(&seed, 0, base - 1);
        }
        check_against_exact(v, n);
    }
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_empty_histogram_reports_zero),
        cmocka_unit_test(a_single_value_is_every_percentile),
        cmocka_unit_test(values_low_in_a_wide_bucket_stay_under_their_max),
        cmocka_unit_test(values_high_in_a_wide_bucket_stay_over_their_min),
        cmocka_unit_test(a_uniform_distribution_is_read_back_within_a_bucket),
        cmocka_unit_test(all_values_in_one_bucket_keep_their_order),
        cmocka_unit_test(extremes_and_two_far_apart_clusters),
        cmocka_unit_test(merged_histograms_keep_the_overall_min_and_max),
        cmocka_unit_test(random_distributions_match_the_exact_percentiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
