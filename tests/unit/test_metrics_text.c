/* The Prometheus text writer and the stats line, without a network:
   families, escaping, exact numbers, histograms, refusals, the line. */
#include "helpers.h"

#include <errno.h>
#include <math.h>
#include <ringport/metrics.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_sample_families(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    struct rp_metric_label l[2] = {{"a", "x\\y"}, {"b", "say \"hi\"\n"}};
    rp_metrics_family(w, "t_things_total", RP_METRIC_COUNTER, "Things.\\ok");
    rp_metrics_sample_u64(w, l, 2, 18446744073709551615ull);
    rp_metrics_family(w, "t_ratio", RP_METRIC_GAUGE, "A ratio.");
    rp_metrics_sample(w, NULL, 0, 0.1);
    rp_metrics_sample(w, l, 1, INFINITY);
    rp_metrics_family(w, "t_seconds", RP_METRIC_HISTOGRAM, "Durations.");
    const double bounds[] = {0.005, 0.25, 1};
    const uint64_t counts[] = {1, 2, 0, 4};
    rp_metrics_histogram(w, NULL, 0, bounds, 3, counts, 9.5);
}

static char *render(rp_metrics_collect_fn fn, int *err)
{
    struct rp_metrics *m;
    char *text = NULL;
    size_t len;
    assert_int_equal(rp_metrics_create(NULL, &m), 0);
    assert_int_equal(rp_metrics_port(m), 0);
    assert_int_equal(rp_metrics_add_collector(m, fn, NULL), 0);
    *err = rp_metrics_render(m, &text, &len);
    if (*err == 0)
        assert_int_equal(strlen(text), len);
    rp_metrics_destroy(m);
    return text;
}

static void families_are_written_exactly_and_escaped(void **state)
{
    (void)state;
    int err;
    char *t = render(write_sample_families, &err);
    assert_int_equal(err, 0);
    assert_non_null(strstr(t, "# HELP t_things_total Things.\\\\ok\n"
                              "# TYPE t_things_total counter\n"
                              "t_things_total{a=\"x\\\\y\",b=\"say "
                              "\\\"hi\\\"\\n\"} 18446744073709551615\n"));
    assert_non_null(strstr(t, "t_ratio 0.1\nt_ratio{a=\"x\\\\y\"} +Inf\n"));
    assert_non_null(strstr(t, "t_seconds_bucket{le=\"0.005\"} 1\n"
                              "t_seconds_bucket{le=\"0.25\"} 3\n"
                              "t_seconds_bucket{le=\"1\"} 3\n"
                              "t_seconds_bucket{le=\"+Inf\"} 7\n"
                              "t_seconds_sum 9.5\nt_seconds_count 7\n"));
    /* The registry's own families come first, then the collector's. */
    assert_true(strstr(t, "ringport_build_info") < strstr(t, "t_ratio"));
    free(t);
}

static void bad_name(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    rp_metrics_family(w, "9lives", RP_METRIC_GAUGE, "");
    rp_metrics_sample(w, NULL, 0, 1);
}

static void bad_label(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    struct rp_metric_label l = {"__reserved", "x"};
    rp_metrics_family(w, "ok_name", RP_METRIC_GAUGE, "");
    rp_metrics_sample(w, &l, 1, 1);
}

static void split_family(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    rp_metrics_family(w, "a_total", RP_METRIC_COUNTER, "");
    rp_metrics_family(w, "b", RP_METRIC_GAUGE, "");
    rp_metrics_family(w, "a_total", RP_METRIC_COUNTER, "");
}

static void wrong_kind(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    rp_metrics_family(w, "h", RP_METRIC_HISTOGRAM, "");
    rp_metrics_sample(w, NULL, 0, 1);
}

static void sample_outside_family(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    rp_metrics_sample(w, NULL, 0, 1);
}

static void mistakes_fail_the_whole_render(void **state)
{
    (void)state;
    rp_metrics_collect_fn bad[] = {bad_name, bad_label, split_family,
                                   wrong_kind, sample_outside_family};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err;
        char *t = render(bad[i], &err);
        assert_int_equal(err, -EINVAL);
        assert_null(t);
    }
}

static void statline_shows_rates_pool_and_groups(void **state)
{
    (void)state;
    struct rp_statline_sample a, b;
    char line[512];
    memset(&a, 0, sizeof a);
    a.t_ns = 1000000000ull;
    b = a;
    b.t_ns += 2000000000ull; /* two seconds */
    b.srv.sessions = 12;
    b.srv.accepts = 40;
    b.srv.packets_in = 2000;
    b.srv.packets_out = 2000;
    b.srv.sends = 500;
    b.srv.leaves[RP_LEAVE_KICKED] = 3;
    b.pool_in_use = 7;
    b.pool_capacity = 4096;
    a.ngroups = 1;
    snprintf(a.groups[0].name, sizeof a.groups[0].name, "pvp");
    a.groups[0].messages = 100;
    b.ngroups = 2;
    snprintf(b.groups[0].name, sizeof b.groups[0].name, "lobby");
    b.groups[0].messages = 10; /* new: counted from 0 */
    snprintf(b.groups[1].name, sizeof b.groups[1].name, "pvp");
    b.groups[1].messages = 300;
    int n = rp_statline_format(&a, &b, line, sizeof line);
    assert_int_equal((size_t)n, strlen(line));
    assert_string_equal(line, "sessions 12 | accepts/s 20 | msgs in/s 1000 "
                              "out/s 1000 | MB/s in 0.00 out 0.00 | sends/s "
                              "250 (4.0 pkts/send) | disconnects 3 | pool "
                              "7/4096 | lobby 5/s pvp 100/s");
    /* A short buffer: truncated, terminated, the full length returned. */
    char tiny[10];
    assert_int_equal(rp_statline_format(&a, &b, tiny, sizeof tiny), n);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(families_are_written_exactly_and_escaped),
        cmocka_unit_test(mistakes_fail_the_whole_render),
        cmocka_unit_test(statline_shows_rates_pool_and_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
