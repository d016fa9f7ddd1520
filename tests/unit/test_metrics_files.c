/*
 * Static files on the metrics endpoint (rp_metrics_add_file): served at
 * their exact path with their bytes and type, replaced when added again,
 * bad paths and a full table refused, /metrics untouched, other paths and
 * methods still 404 and 405. Real HTTP on loopback.
 */
#include "../integration/metrics_util.h"

#include <ringport/metrics.h>

static const char page[] = "<!doctype html><p>hi</p>";
static const unsigned char blob[] = {0x00, 0xff, 0x10, 0x00, 0x7f};

static void added_files_are_served_with_their_bytes_and_type(void **state)
{
    (void)state;
    struct rp_metrics *m;
    struct mu_reply r;
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    uint16_t port = rp_metrics_port(m);
    assert_int_equal(rp_metrics_add_file(m, "/", "text/html; charset=utf-8",
                                         page, sizeof page - 1),
                     0);
    assert_int_equal(rp_metrics_add_file(m, "/b.bin",
                                         "application/octet-stream", blob,
                                         sizeof blob),
                     0);

    assert_int_equal(mu_get(port, "/", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/html; charset=utf-8"));
    assert_non_null(strstr(r.head, "Cache-Control: no-cache"));
    assert_string_equal(r.body, page);
    mu_reply_free(&r);
    /* Binary bytes, NULs included, come back exactly. */
    assert_int_equal(mu_get(port, "/b.bin", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Length: 5"));
    assert_memory_equal(r.body, blob, sizeof blob);
    mu_reply_free(&r);
    /* Exact paths only; /metrics is still the registry. */
    assert_int_equal(mu_get(port, "/b.bin/x", &r), 0);
    assert_int_equal(r.status, 404);
    mu_reply_free(&r);
    assert_int_equal(mu_get(port, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "ringport_metrics_scrapes_total"));
    mu_reply_free(&r);
    const char *post = "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(mu_http(port, post, strlen(post), &r), 0);
    assert_int_equal(r.status, 405);
    mu_reply_free(&r);

    /* Added again: replaced. */
    assert_int_equal(rp_metrics_add_file(m, "/", "text/plain", "x", 1), 0);
    assert_int_equal(mu_get(port, "/", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/plain"));
    assert_string_equal(r.body, "x");
    mu_reply_free(&r);
    rp_metrics_destroy(m);
}

static void bad_paths_and_a_full_table_are_refused(void **state)
{
    (void)state;
    struct rp_metrics *m;
    char path[80];
    assert_int_equal(rp_metrics_create(NULL, &m), 0);
    assert_int_equal(rp_metrics_add_file(m, "x", "text/plain", "x", 1),
                     -EINVAL);
    assert_int_equal(rp_metrics_add_file(m, "/metrics", "text/plain", "x", 1),
                     -EINVAL);
    assert_int_equal(rp_metrics_add_file(m, "/a", "", "x", 1), -EINVAL);
    memset(path, 'a', sizeof path);
    path[0] = '/';
    path[64] = '\0';
    assert_int_equal(rp_metrics_add_file(m, path, "text/plain", "x", 1),
                     -EINVAL);
    for (int i = 0; i < RP_METRICS_MAX_FILES; i++) {
        snprintf(path, sizeof path, "/f%d", i);
        assert_int_equal(rp_metrics_add_file(m, path, "text/plain", "x", 1), 0);
    }
    assert_int_equal(rp_metrics_add_file(m, "/one-more", "text/plain", "x", 1),
                     -ENOSPC);
    /* Replacing needs no new entry. */
    assert_int_equal(rp_metrics_add_file(m, "/f0", "text/plain", "y", 1), 0);
    rp_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(added_files_are_served_with_their_bytes_and_type),
        cmocka_unit_test(bad_paths_and_a_full_table_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
