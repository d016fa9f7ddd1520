/* Logging: level filtering, line format, thread names, the sink hook. */
#include "helpers.h"

#include <ringport/log.h>
#include <stdio.h>
#include <string.h>

static char last_line[1024];
static int lines_seen;

static void capture_sink(enum rp_log_level level, const char *line, void *user)
{
    (void)level;
    (void)user;
    snprintf(last_line, sizeof last_line, "%s", line);
    lines_seen++;
}

static void log_drops_lines_below_the_level(void **state)
{
    (void)state;
    rp_log_set_sink(capture_sink, NULL);
    rp_log_set_level(RP_LOG_WARN);
    lines_seen = 0;
    RP_INFO("test", "dropped %d", 1);
    RP_WARN("test", "kept %d", 2);
    RP_ERROR("test", "kept %d", 3);
    assert_int_equal(lines_seen, 2);
    rp_log_set_sink(NULL, NULL);
}

static void log_line_names_level_thread_and_module(void **state)
{
    (void)state;
    rp_log_set_sink(capture_sink, NULL);
    rp_log_set_level(RP_LOG_DEBUG);
    rp_log_set_thread_name("io-7");
    RP_WARN("session", "frame %u > limit %u", 9000u, 8192u);
    assert_non_null(strstr(last_line, " WARN [io-7] session: frame 9000 > "
                                      "limit 8192"));
    /* ISO-8601 UTC timestamp first: "YYYY-MM-DDTHH:MM:SS.mmmZ " */
    assert_int_equal(last_line[4], '-');
    assert_int_equal(last_line[10], 'T');
    assert_int_equal(last_line[23], 'Z');
    rp_log_set_sink(NULL, NULL);
}

static void log_truncates_overlong_lines_safely(void **state)
{
    (void)state;
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    rp_log_set_sink(capture_sink, NULL);
    rp_log_set_level(RP_LOG_INFO);
    RP_ERROR("test", "%s", big);
    assert_true(strlen(last_line) < sizeof last_line);
    assert_non_null(strstr(last_line, "xxxx"));
    rp_log_set_sink(NULL, NULL);
}

static void log_level_names_parse(void **state)
{
    (void)state;
    assert_int_equal(rp_log_level_parse("debug"), RP_LOG_DEBUG);
    assert_int_equal(rp_log_level_parse("WARN"), RP_LOG_WARN);
    assert_int_equal(rp_log_level_parse("off"), RP_LOG_OFF);
    assert_int_equal(rp_log_level_parse("loud"), -22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_drops_lines_below_the_level),
        cmocka_unit_test(log_line_names_level_thread_and_module),
        cmocka_unit_test(log_truncates_overlong_lines_safely),
        cmocka_unit_test(log_level_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
