/* A private redis-server for tests: started on a free port in a temporary
 * directory, waited for, stopped and removed at the end.
 *
 * Tests never fake Redis (STYLE.md section 10): tests of conn, lock and
 * anything else that talks to Redis start one of these in their group setup.
 * The child gets PR_SET_PDEATHSIG, so a test that crashes does not leave a
 * server behind. tq_test_redis_kill() and tq_test_redis_restart() stop the
 * server and start it again on the same port (an outage, as clients see it).
 *
 * The binary is "redis-server" from PATH, or $TICKQ_REDIS_SERVER. */
#ifndef TQ_TEST_REDIS_SERVER_H
#define TQ_TEST_REDIS_SERVER_H

#include "common/conn.h"

#include <hiredis/hiredis.h>
#include <sys/types.h>

#define TQ_TEST_REDIS_START_TIMEOUT_MS 10000

typedef struct {
    pid_t pid;          /* 0 while not running */
    int port;           /* TCP port on 127.0.0.1, kept across restarts */
    int unix_socket;    /* 1: also listen on sock */
    char dir[128];      /* temporary directory: log, socket */
    char sock[192];     /* unix socket path ("" when unix_socket is 0) */
    char password[64];  /* requirepass, "" for none */
    char url[320];      /* redis://[:password@]127.0.0.1:port/0 */
    char unix_url[320]; /* unix://sock ("" when unix_socket is 0) */
    int sentinel_of;    /* a sentinel: the port of the master it watches; 0 otherwise */
    char master[32];    /* a sentinel: the name it knows that master by */
    int cluster;        /* 1: a cluster node (cluster-enabled) */
} tq_test_redis;

/* Starts a redis-server without a password, with a unix socket. Returns 0,
 * or -1 after printing why on stderr. */
int tq_test_redis_start(tq_test_redis *srv);

/* The same with requirepass (password may be NULL or "" for none) and an
 * optional unix socket. */
int tq_test_redis_start_with(tq_test_redis *srv, const char *password, int unix_socket);

/* Starts a sentinel that watches the Redis on master_port as master name
 * (quorum 1), with requirepass password (NULL or "" for none). Its url is
 * redis-sentinel://127.0.0.1:port/0?master=name, with
 * &sentinel_password=password when it has one. Returns 0, or -1 after
 * printing why on stderr. Stopped with tq_test_redis_stop(). */
int tq_test_sentinel_start(tq_test_redis *srv, int master_port, const char *name,
                           const char *password);

/* Starts n (1..16) cluster nodes without a password in srv[0..n), each
 * serving an equal share of the slots as a master, and waits until every
 * node sees the cluster up. url gets redis-cluster://127.0.0.1:PORT,...
 * naming them all. Returns 0, or -1 after printing why on stderr (the nodes
 * started are stopped). Each is stopped with tq_test_redis_stop(). */
int tq_test_cluster_start(tq_test_redis *srv, int n, char *url, size_t urllen);

/* tq_test_redis_group_start() with a one-node Redis Cluster (every slot
 * on it; srv->url is its redis-cluster:// URL): a call whose keys are not
 * all in one slot fails with CROSSSLOT, as it would on a real cluster. */
int tq_test_redis_group_start_cluster(tq_test_redis *srv, tq_conn **conn,
                                      const char *name);

/* Stops the server process (SIGTERM, then SIGKILL after 5 s) but keeps its
 * port and directory for tq_test_redis_restart(). Returns 0 or -1. */
int tq_test_redis_kill(tq_test_redis *srv);

/* Starts the server again on the same port. Returns 0 or -1. */
int tq_test_redis_restart(tq_test_redis *srv);

/* Stops the server if it runs and removes its directory. Safe on a zeroed
 * struct and twice. */
void tq_test_redis_stop(tq_test_redis *srv);

/* Runs one command on a fresh connection (authenticated when the server has
 * a password) and returns a new reply (freeReplyObject), or NULL when the
 * server does not answer. For test set-up and checks, not for code under
 * test. */
redisReply *tq_test_redis_cmd(const tq_test_redis *srv, const char *fmt, ...);

/* A test group's start, as most unit tests have it: SIGPIPE ignored (a
 * server stopped under a test must not kill it), only errors logged, a
 * server without a password or a unix socket and, when conn is not NULL,
 * a tq_conn to it named name. Returns 0 or -1. */
int tq_test_redis_group_start(tq_test_redis *srv, tq_conn **conn, const char *name);

/* Frees conn (NULL is fine) and stops srv. Returns 0, for a cmocka group
 * teardown. */
int tq_test_redis_group_stop(tq_test_redis *srv, tq_conn *conn);

/* Empties the server (FLUSHALL), its script cache (SCRIPT FLUSH) and its
 * functions (FUNCTION FLUSH), so a test starts clean and exercises the
 * EVALSHA -> EVAL fallback and the loading of the broker library. Returns
 * 0 or -1. */
int tq_test_redis_flush(const tq_test_redis *srv);

/* A TCP port on 127.0.0.1 that nothing listened on a moment ago. Returns
 * the port, or -1. */
int tq_test_free_port(void);

#endif
