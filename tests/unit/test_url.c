/* Tests of common/url: redis:// and unix:// URLs, good and bad. */
#include "tests/support/check.h"

#include <stdio.h>
#include <string.h>

#include "common/url.h"

/* Parses s and fails the test with the parser's error if it is refused. */
static void parse_ok(const char *s, tq_url *u)
{
    char err[256] = "";
    int rc = tq_url_parse(s, u, err, sizeof err);
    if (rc != 0)
        fail_msg("tq_url_parse(\"%s\") = %d (%s): %s", s, rc, tq_strerror(rc), err);
}

/* Parses s, expects TQ_EINVAL and an error text containing needle. */
static void parse_bad(const char *s, const char *needle)
{
    tq_url u;
    char err[512] = "";
    int rc = tq_url_parse(s, &u, err, sizeof err);
    if (rc != TQ_EINVAL)
        fail_msg(
            "tq_url_parse(\"%s\"): expected TQ_EINVAL, got %d (%s); host \"%s\" port "
            "%d db %d",
            s ? s : "(null)", rc, tq_strerror(rc), u.host, u.port, u.db);
    if (!*err)
        fail_msg("tq_url_parse(\"%s\"): empty error text", s ? s : "(null)");
    if (needle && !strstr(err, needle))
        fail_msg("tq_url_parse(\"%s\"): error \"%s\" does not mention \"%s\"",
                 s ? s : "(null)", err, needle);
}

static void test_host_only(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://localhost", &u);
    TQ_ASSERT_INT(u.is_unix, 0);
    TQ_ASSERT_STR(u.host, "localhost");
    TQ_ASSERT_INT(u.port, 6379);
    TQ_ASSERT_INT(u.port, TQ_URL_DEFAULT_PORT);
    TQ_ASSERT_INT(u.db, 0);
    TQ_ASSERT_STR(u.user, "");
    TQ_ASSERT_STR(u.password, "");
}

static void test_host_port_db(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://10.0.0.7:6380", &u);
    TQ_ASSERT_STR(u.host, "10.0.0.7");
    TQ_ASSERT_INT(u.port, 6380);
    TQ_ASSERT_INT(u.db, 0);

    parse_ok("redis://redis.example.com:1/15", &u);
    TQ_ASSERT_STR(u.host, "redis.example.com");
    TQ_ASSERT_INT(u.port, 1);
    TQ_ASSERT_INT(u.db, 15);

    parse_ok("redis://h:65535/3", &u);
    TQ_ASSERT_INT(u.port, 65535);
    TQ_ASSERT_INT(u.db, 3);

    parse_ok("redis://h/7", &u);
    TQ_ASSERT_INT(u.port, 6379);
    TQ_ASSERT_INT(u.db, 7);

    parse_ok("redis://h/", &u); /* an empty path is db 0 */
    TQ_ASSERT_STR(u.host, "h");
    TQ_ASSERT_INT(u.db, 0);

    parse_ok("redis://127.0.0.1:6379/0", &u); /* the documented default */
    TQ_ASSERT_STR(u.host, "127.0.0.1");
    TQ_ASSERT_INT(u.port, 6379);
    TQ_ASSERT_INT(u.db, 0);
}

static void test_password(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://:s3cret@h", &u);
    TQ_ASSERT_STR(u.user, "");
    TQ_ASSERT_STR(u.password, "s3cret");
    TQ_ASSERT_STR(u.host, "h");
    TQ_ASSERT_INT(u.port, 6379);

    parse_ok("redis://:s3cret@h:7000/2", &u);
    TQ_ASSERT_STR(u.password, "s3cret");
    TQ_ASSERT_INT(u.port, 7000);
    TQ_ASSERT_INT(u.db, 2);

    /* The last '@' ends the credentials; the first ':' ends the user. */
    parse_ok("redis://:a:b@c@h", &u);
    TQ_ASSERT_STR(u.user, "");
    TQ_ASSERT_STR(u.password, "a:b@c");
    TQ_ASSERT_STR(u.host, "h");
}

static void test_user_password(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://alice:s3cret@h:6390/4", &u);
    TQ_ASSERT_STR(u.user, "alice");
    TQ_ASSERT_STR(u.password, "s3cret");
    TQ_ASSERT_STR(u.host, "h");
    TQ_ASSERT_INT(u.port, 6390);
    TQ_ASSERT_INT(u.db, 4);

    parse_ok("redis://alice@h", &u);
    TQ_ASSERT_STR(u.user, "alice");
    TQ_ASSERT_STR(u.password, "");
}

static void test_percent_escapes(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://us%65r:p%40ss%3Aw%2Fd%25@h", &u);
    TQ_ASSERT_STR(u.user, "user");
    TQ_ASSERT_STR(u.password, "p@ss:w/d%");
    TQ_ASSERT_STR(u.host, "h");

    parse_ok("redis://loc%61lhost:6379", &u);
    TQ_ASSERT_STR(u.host, "localhost");

    parse_ok("redis://:%e2%82%ac@h", &u); /* lower case hex, UTF-8 euro sign */
    TQ_ASSERT_STR(u.password, "\xe2\x82\xac");

    parse_ok("unix:///tmp/my%20redis.sock", &u);
    TQ_ASSERT_STR(u.host, "/tmp/my redis.sock");
}

static void test_bad_percent_escapes(void **state)
{
    (void)state;
    parse_bad("redis://:%zz@h", "password");
    parse_bad("redis://:abc%4@h", "password"); /* cut short by the '@' */
    parse_bad("redis://:abc%@h", "password");
    parse_bad("redis://:ab%00c@h", "password"); /* a NUL would cut the password */
    parse_bad("redis://h%4", "host");
    /* sscanf's %x would take a sign or a space: these are not hex escapes. */
    parse_bad("redis://:%-1@h", "password");
    parse_bad("redis://:%+1@h", "password");
    parse_bad("redis://:% 1x@h", "password");
    parse_bad("redis://a%4gb@h", "user");
}

static void test_ipv6(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://[::1]:6380", &u);
    TQ_ASSERT_STR(u.host, "::1");
    TQ_ASSERT_INT(u.port, 6380);

    parse_ok("redis://[::1]", &u);
    TQ_ASSERT_STR(u.host, "::1");
    TQ_ASSERT_INT(u.port, 6379);

    parse_ok("redis://:pw@[fe80::1:2]:7000/9", &u);
    TQ_ASSERT_STR(u.password, "pw");
    TQ_ASSERT_STR(u.host, "fe80::1:2");
    TQ_ASSERT_INT(u.port, 7000);
    TQ_ASSERT_INT(u.db, 9);

    parse_bad("redis://[::1", "'['");
    parse_bad("redis://[::1]x", "junk");
    parse_bad("redis://[::1]:", "port");
    parse_bad("redis://[]:6379", "host");
}

static void test_unix(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("unix:///var/run/redis.sock", &u);
    TQ_ASSERT_INT(u.is_unix, 1);
    TQ_ASSERT_STR(u.host, "/var/run/redis.sock");
    TQ_ASSERT_INT(u.db, 0);

    parse_ok("unix:///tmp/r.sock?db=5", &u);
    TQ_ASSERT_INT(u.is_unix, 1);
    TQ_ASSERT_STR(u.host, "/tmp/r.sock");
    TQ_ASSERT_INT(u.db, 5);

    parse_bad("unix://tmp/r.sock", "absolute");
    parse_bad("unix://", "absolute");
    parse_bad("unix://./r.sock", "absolute");
    parse_bad("unix:///tmp/r.sock?db=", "db=N");
    parse_bad("unix:///tmp/r.sock?db=x", "db=N");
    parse_bad("unix:///tmp/r.sock?db=-1", "db=N");
    parse_bad("unix:///tmp/r.sock?foo=1", "db=N");
    parse_bad("unix:///tmp/r.sock?db=1&x=2", "db=N");

    char path[TQ_URL_HOST_MAX + 16];
    memset(path, 'a', sizeof path);
    memcpy(path, "unix:///", 8);
    path[8 + TQ_URL_HOST_MAX] = '\0'; /* "/" + 256 bytes: one too many */
    parse_bad(path, "too long");
    path[7 + TQ_URL_HOST_MAX - 1] = '\0'; /* "/" + 254 bytes: fits */
    parse_ok(path, &u);
    TQ_ASSERT_INT(strlen(u.host), TQ_URL_HOST_MAX - 1);
}

static void test_errors(void **state)
{
    (void)state;
    parse_bad(NULL, "empty");
    parse_bad("", "empty");
    parse_bad("http://h", "redis://");
    parse_bad("redis:/h", "redis://");
    parse_bad("localhost:6379", "redis://");
    parse_bad(" redis://h", "redis://");

    parse_bad("redis://h:0", "port");
    parse_bad("redis://h:70000", "port");
    parse_bad("redis://h:65536", "port");
    parse_bad("redis://h:abc", "port");
    parse_bad("redis://h:", "port");
    parse_bad("redis://h:-1", "port");
    parse_bad("redis://h:+80", "port");
    parse_bad("redis://h:12a", "port");
    parse_bad("redis://h:99999999999999999999", "port");
    parse_bad("redis://h:6379:6380", "port");

    parse_bad("redis://h/x", "database");
    parse_bad("redis://h/-1", "database");
    parse_bad("redis://h/1.5", "database");
    parse_bad("redis://h/99999999999", "database");
    parse_bad("redis://h/0/extra", "database");

    parse_bad("redis://", "host");
    parse_bad("redis://:6379", "host");
    parse_bad("redis://:pw@", "host");
    parse_bad("redis://:pw@:6379/0", "host");
    parse_bad("redis:///0", "host");

    parse_bad("redis://h?db=1", "unexpected");
    parse_bad("redis://h/1?x", "unexpected");
    parse_bad("redis://h#frag", "unexpected");
    parse_bad("redis://h:6379#x", "unexpected");
}

static void test_too_long(void **state)
{
    (void)state;
    char s[2 * TQ_URL_HOST_MAX + 32];
    tq_url u;

    /* A host of TQ_URL_HOST_MAX - 1 bytes fits, one more does not. */
    strcpy(s, "redis://");
    memset(s + 8, 'h', TQ_URL_HOST_MAX - 1);
    s[8 + TQ_URL_HOST_MAX - 1] = '\0';
    parse_ok(s, &u);
    TQ_ASSERT_INT(strlen(u.host), TQ_URL_HOST_MAX - 1);
    strcat(s, "h");
    parse_bad(s, "too long");

    /* The same for the password. */
    strcpy(s, "redis://:");
    memset(s + 9, 'p', TQ_URL_PASS_MAX - 1);
    strcpy(s + 9 + TQ_URL_PASS_MAX - 1, "@h");
    parse_ok(s, &u);
    TQ_ASSERT_INT(strlen(u.password), TQ_URL_PASS_MAX - 1);
    strcpy(s, "redis://:");
    memset(s + 9, 'p', TQ_URL_PASS_MAX);
    strcpy(s + 9 + TQ_URL_PASS_MAX, "@h");
    parse_bad(s, "password");

    /* And the user. */
    strcpy(s, "redis://");
    memset(s + 8, 'u', TQ_URL_PASS_MAX);
    strcpy(s + 8 + TQ_URL_PASS_MAX, ":p@h");
    parse_bad(s, "user");
}

static void test_error_buffer(void **state)
{
    (void)state;
    tq_url u;
    char err[8];
    memset(err, 'x', sizeof err);
    TQ_ASSERT_RC(tq_url_parse("http://a-rather-long-host", &u, err, sizeof err),
                 TQ_EINVAL);
    TQ_ASSERT_INT(strnlen(err, sizeof err), sizeof err - 1); /* cut, terminated */
    /* No buffer at all is allowed. */
    TQ_ASSERT_RC(tq_url_parse("redis://h:0", &u, NULL, 0), TQ_EINVAL);
    TQ_ASSERT_RC(tq_url_parse("redis://h:1", &u, NULL, 0), 0);
}

static void test_reparse_resets(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis://alice:pw@h:7000/3", &u);
    parse_ok("redis://other", &u);
    TQ_ASSERT_STR(u.user, "");
    TQ_ASSERT_STR(u.password, "");
    TQ_ASSERT_INT(u.port, 6379);
    TQ_ASSERT_INT(u.db, 0);
    parse_ok("unix:///s?db=2", &u);
    parse_ok("redis://h", &u);
    TQ_ASSERT_INT(u.is_unix, 0);
    TQ_ASSERT_INT(u.db, 0);
}

static void test_host_refuses_spaces_and_controls(void **state)
{
    (void)state;
    const char *bad[] = {"redis://a b:6379/0", "redis://a%20b/0",  "redis://a%0ab",
                         "redis://h\t",        "redis://h\x01:1",  "redis://h%7f",
                         "redis://h!x",        "redis://h%2fx",    "redis://h,x",
                         "redis://[::1 ]",     "redis://[::1%0a]", "redis://[h]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i], "host");
    /* Anywhere in the URL, a raw space or control byte is refused: a space
     * in a password is written %20. */
    tq_url u;
    parse_bad("redis://h/0 ", "space or control");
    parse_bad("redis://:p w@h", "space or control");
    parse_bad("redis://:p\x01w@h", "space or control");
    parse_bad("unix:///tmp/a\nb.sock",
              "a control byte at position 14 of the socket path");
    /* A socket path may hold a space. */
    parse_ok("unix:///tmp/a b.sock", &u);
    TQ_ASSERT_STR(u.host, "/tmp/a b.sock");
    parse_bad("unix:///tmp/a%0ab.sock", "socket path");
    parse_ok("redis://:p%20w@h", &u);
    TQ_ASSERT_STR(u.password, "p w");
    parse_ok("redis://my-host_1.example.com:1/0", &u);
    parse_ok("redis://10.0.0.1", &u);
}

/* rediss:// is redis:// with TLS. */
static void test_rediss(void **state)
{
    (void)state;
    tq_url u;
    char buf[TQ_URL_SHOWN_MAX];
    parse_ok("rediss://u:pw@db.example.com:6380/3", &u);
    TQ_ASSERT_INT(u.tls, 1);
    TQ_ASSERT_STR(u.host, "db.example.com");
    TQ_ASSERT_INT(u.port, 6380);
    TQ_ASSERT_INT(u.db, 3);
    TQ_ASSERT_STR(u.password, "pw");
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "rediss://u:***@db.example.com:6380/3");
    parse_ok("redis://h", &u);
    TQ_ASSERT_INT(u.tls, 0);
    parse_bad("redisss://h", "must start with redis://, rediss://");
    parse_bad("rediss://h?master=m", "unexpected '?'");
}

static void test_sentinel(void **state)
{
    (void)state;
    tq_url u;
    parse_ok("redis-sentinel://s1,s2:26380,[::1]:7/3?master=mymaster", &u);
    TQ_ASSERT_INT(u.is_sentinel, 1);
    TQ_ASSERT_INT(u.is_unix, 0);
    TQ_ASSERT_INT(u.nnodes, 3);
    TQ_ASSERT_STR(u.nodes[0].host, "s1");
    TQ_ASSERT_INT(u.nodes[0].port, TQ_URL_SENTINEL_PORT);
    TQ_ASSERT_STR(u.nodes[1].host, "s2");
    TQ_ASSERT_INT(u.nodes[1].port, 26380);
    TQ_ASSERT_STR(u.nodes[2].host, "::1");
    TQ_ASSERT_INT(u.nodes[2].port, 7);
    TQ_ASSERT_STR(u.host, "s1"); /* host and port: the first sentinel */
    TQ_ASSERT_INT(u.port, TQ_URL_SENTINEL_PORT);
    TQ_ASSERT_INT(u.db, 3);
    TQ_ASSERT_STR(u.master, "mymaster");
    TQ_ASSERT_STR(u.password, "");
    TQ_ASSERT_STR(u.sentinel_password, "");

    /* The user and password are the master's; the sentinels' come in the
     * query, in any order. */
    parse_ok("redis-sentinel://app:pw%40x@h?sentinel_password=sp%26w&master=m.1"
             "&sentinel_user=sen",
             &u);
    TQ_ASSERT_STR(u.user, "app");
    TQ_ASSERT_STR(u.password, "pw@x");
    TQ_ASSERT_STR(u.sentinel_password, "sp&w");
    TQ_ASSERT_STR(u.sentinel_user, "sen");
    TQ_ASSERT_STR(u.master, "m.1");
    TQ_ASSERT_INT(u.nnodes, 1);
    TQ_ASSERT_INT(u.db, 0);

    /* 16 sentinels at most. */
    char many[512] = "redis-sentinel://";
    for (int i = 0; i < TQ_URL_NODES_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sh%d", i ? "," : "",
                 i);
    strcat(many, "?master=m");
    parse_ok(many, &u);
    TQ_ASSERT_INT(u.nnodes, TQ_URL_NODES_MAX);
    TQ_ASSERT_STR(u.nodes[TQ_URL_NODES_MAX - 1].host, "h15");
    many[strlen(many) - strlen("?master=m")] = '\0';
    strcat(many, ",h16?master=m");
    parse_bad(many, "more than 16 sentinels");

    parse_bad("redis-sentinel://h", "needs ?master=NAME");
    parse_bad("redis-sentinel://h/0", "needs ?master=NAME");
    parse_bad("redis-sentinel://h?master=", "needs ?master=NAME");
    parse_bad("redis-sentinel://h?master=a%20b", "needs ?master=NAME");
    parse_bad("redis-sentinel://h?sentinel_password=x", "needs ?master=NAME");
    parse_bad("redis-sentinel://h?master=m&master=n", "master is given twice");
    parse_bad("redis-sentinel://h?master=m&db=2", "takes master, sentinel_user");
    parse_bad("redis-sentinel://h?master=m&", "takes master");
    parse_bad("redis-sentinel://h?master=m#x", "unexpected '#'");
    parse_bad("redis-sentinel://h,,k?master=m", "the host is missing");
    parse_bad("redis-sentinel://h,?master=m", "the host is missing");
    parse_bad("redis-sentinel://h:0?master=m", "the port");
    parse_bad("redis-sentinel://h:1,k:65536?master=m", "the port");
    parse_bad("redis-sentinel://?master=m", "the host is missing");
    /* A query belongs to sentinel URLs only. */
    parse_bad("redis://h?master=m", "unexpected '?'");
}

static void test_cluster(void **state)
{
    (void)state;
    tq_url u;
    char buf[TQ_URL_SHOWN_MAX];
    parse_ok("redis-cluster://app:pw@n1,n2:7001,[::1]:7002", &u);
    TQ_ASSERT_INT(u.is_cluster, 1);
    TQ_ASSERT_INT(u.is_sentinel, 0);
    TQ_ASSERT_INT(u.tls, 0);
    TQ_ASSERT_INT(u.nnodes, 3);
    TQ_ASSERT_STR(u.nodes[0].host, "n1");
    TQ_ASSERT_INT(u.nodes[0].port, TQ_URL_DEFAULT_PORT); /* not the sentinels' */
    TQ_ASSERT_STR(u.nodes[1].host, "n2");
    TQ_ASSERT_INT(u.nodes[1].port, 7001);
    TQ_ASSERT_STR(u.nodes[2].host, "::1");
    TQ_ASSERT_INT(u.nodes[2].port, 7002);
    TQ_ASSERT_STR(u.host, "n1");
    TQ_ASSERT_STR(u.user, "app");
    TQ_ASSERT_STR(u.password, "pw");
    TQ_ASSERT_INT(u.db, 0);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "redis-cluster://app:***@n1:6379,n2:7001,[::1]:7002/0");

    parse_ok("rediss-cluster://n1/0", &u);
    TQ_ASSERT_INT(u.is_cluster, 1);
    TQ_ASSERT_INT(u.tls, 1);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "rediss-cluster://n1:6379/0");

    parse_bad("redis-cluster://n1/1", "database 0 only");
    parse_bad("redis-cluster://n1,,n2", "the host is missing");
    parse_bad("redis-cluster://n1?master=m", "unexpected '?'");
    char many[512] = "redis-cluster://";
    for (int i = 0; i <= TQ_URL_NODES_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sh%d", i ? "," : "",
                 i);
    parse_bad(many, "more than 16 nodes");
}

/* A sentinel password, in the query, is as secret as the master's. */
static void test_sentinel_password_hidden(void **state)
{
    (void)state;
    const char *bad[] = {
        "redis-sentinel://h:0?master=m&sentinel_password=Sekr1tPw",
        "redis-sentinel://h?master=m&sentinel_password=Sekr1tPw&x=1",
        "redis-sentinel://h?master=m&sentinel_password=Sekr1tPw#",
        "redis-sentinel://h?master=a%20b&sentinel_password=Sekr1tPw",
        "redis-sentinel://h?sentinel_password=Sekr1tPw&master=m&master=m",
        "redis-sentinel://h?sentinel_password=Sekr1tPw%zz&master=m",
        "redis-sentinel://:Sekr1tPw@h?sentinel_password=Sekr1tPw&master=a&master=b",
        "redis://h/0?sentinel_password=Sekr1tPw",
        "redis://:Sekr1tPw@h/0?sentinel_password=Sekr1tPw",
        "redis-sentinel://h?master=m&sentinel_password=Sekr1t@Pw&x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tq_url u;
        char err[512] = "";
        TQ_ASSERT_RC_ERR(tq_url_parse(bad[i], &u, err, sizeof err), TQ_EINVAL, err);
        TQ_ASSERT_NOT_CONTAINS(err, "Sekr1t");
    }
    tq_url u;
    char buf[1024];
    parse_ok("redis-sentinel://app:Sekr1tA@s1:1,[::1]:2/4?master=mm&sentinel_user=s%20u"
             "&sentinel_password=Sekr1tB",
             &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf,
                  "redis-sentinel://app:***@s1:1,[::1]:2/4?master=mm&sentinel_user=s%20u"
                  "&sentinel_password=***");
    /* It parses back to the same sentinels and master. */
    tq_url back;
    parse_ok(buf, &back);
    TQ_ASSERT_INT(back.nnodes, 2);
    TQ_ASSERT_STR(back.nodes[1].host, "::1");
    TQ_ASSERT_STR(back.master, "mm");
    TQ_ASSERT_STR(back.sentinel_user, "s u");
    parse_ok("redis-sentinel://h?master=m", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "redis-sentinel://h:26379/0?master=m");
    /* Cut short, still no secret. */
    for (size_t len = 1; len < 90; len++) {
        parse_ok("redis-sentinel://:Sekr1tA@h?master=m&sentinel_password=Sekr1tB", &u);
        tq_url_redacted(&u, buf, len);
        TQ_ASSERT_INT(strlen(buf), strlen(buf) < len - 1 ? strlen(buf) : len - 1);
        TQ_ASSERT_NOT_CONTAINS(buf, "Sekr1t");
    }
}

/* No error shows the password, whichever part of the URL is wrong. */
static void test_errors_hide_the_password(void **state)
{
    (void)state;
    const char *bad[] = {"redis://:Sekr1tPw@h:99999/0", "redis://u:Sekr1tPw@h/zz",
                         "redis://:Sekr1tPw@/0",        "redis://:Sekr1tPw@h/0?x=1",
                         "redis://:Sekr1tPw@a b/0",     "redis://:Sekr1tPw@[::1/0",
                         "redis://:Sekr1tPw@[::1]x/0",  "redis://:Sekr1tPw@h%zz/0",
                         "redis://:Sekr1tPw%zz@h/0",    "redis://:Sekr1tPw@h/0#x",
                         "redis://u%zz:Sekr1tPw@h",     "redis://:Sekr1tPw@h:1:2",
                         "http://:Sekr1tPw@h/0",        "h:Sekr1tPw@x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tq_url u;
        char err[512] = "";
        TQ_ASSERT_RC_ERR(tq_url_parse(bad[i], &u, err, sizeof err), TQ_EINVAL, err);
        TQ_ASSERT_NOT_CONTAINS(err, "Sekr1tPw");
        TQ_ASSERT_NOT_CONTAINS(err, "Sekr1t");
    }
    /* The URL in the message is the redacted one. */
    tq_url u;
    char err[512] = "";
    tq_url_parse("redis://:Sekr1tPw@h:99999/0", &u, err, sizeof err);
    TQ_ASSERT_CONTAINS(err, "redis://:***@h:99999/0");
}

static void test_redacted(void **state)
{
    (void)state;
    tq_url u;
    char buf[TQ_URL_HOST_MAX + 64];

    parse_ok("redis://alice:s3cret@h:6390/4", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_NOT_CONTAINS(buf, "s3cret");
    TQ_ASSERT_CONTAINS(buf, "***");
    TQ_ASSERT_CONTAINS(buf, "h:6390/4");
    TQ_ASSERT_CONTAINS(buf, "redis://");

    parse_ok("redis://:s3cret@h", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_NOT_CONTAINS(buf, "s3cret");
    TQ_ASSERT_STR(buf, "redis://:***@h:6379/0");

    /* The user is no secret and helps to find a wrong ACL user. */
    parse_ok("redis://alice:s3cret@h:6390/4", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "redis://alice:***@h:6390/4");
    parse_ok("redis://al%40ice@h", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "redis://al%40ice@h:6379/0");

    parse_ok("redis://h", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "redis://h:6379/0");

    parse_ok("redis://[::1]:6380/2", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "redis://[::1]:6380/2");

    parse_ok("unix:///tmp/r.sock?db=3", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "unix:///tmp/r.sock?db=3");

    /* The redacted form parses back to the same place. */
    tq_url back;
    parse_ok("redis://:pw@[fe80::2]:7/1", &u);
    tq_url_redacted(&u, buf, sizeof buf);
    parse_ok(buf, &back);
    TQ_ASSERT_STR(back.host, u.host);
    TQ_ASSERT_INT(back.port, u.port);
    TQ_ASSERT_INT(back.db, u.db);
    TQ_ASSERT_STR(back.password, "***");

    /* A small buffer is cut and terminated. */
    char small[10];
    parse_ok("redis://:s3cret@host:6379/0", &u);
    tq_url_redacted(&u, small, sizeof small);
    TQ_ASSERT_INT(strlen(small), sizeof small - 1);
    TQ_ASSERT_NOT_CONTAINS(small, "s3c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_only),
        cmocka_unit_test(test_host_port_db),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_user_password),
        cmocka_unit_test(test_percent_escapes),
        cmocka_unit_test(test_bad_percent_escapes),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_reparse_resets),
        cmocka_unit_test(test_redacted),
        cmocka_unit_test(test_rediss),
        cmocka_unit_test(test_sentinel),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_sentinel_password_hidden),
        cmocka_unit_test(test_host_refuses_spaces_and_controls),
        cmocka_unit_test(test_errors_hide_the_password),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
