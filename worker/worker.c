/* The worker process: task threads, heartbeat + reaper thread, shutdown.
 *
 * Each task thread owns a Redis connection and loops: fetch a batch (one
 * script), run each task, complete the batch (one script). The batch grows
 * while the queue is deep and every task is fast, and falls back to one
 * message as soon as a slow task shows up, so a long task never holds
 * messages that idle threads could run. When every queue is empty the
 * thread blocks in BLMOVE on the first queue (1 s; 0.1 s when it consumes
 * several queues, so a lower-priority queue waits at most that long). */
#include "worker/worker.h"
#include "common/broker.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/delayed.h"
#include "common/err.h"
#include "common/lock.h"
#include "common/log.h"
#include "common/proc.h"
#include "worker/queue.h"
#include "worker/retry.h"
#include "worker/tasks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEARTBEAT_MS 1000
/* A message in this worker's processing list that no thread holds for this
 * long is an orphan: the reply of the fetch that moved it there was lost
 * (any reply comes within the command timeout, or never). */
#define ORPHAN_AGE_MS (TQ_CONN_COMMAND_TIMEOUT_MS + 2000)
#define WORKER_ERRORS_KEPT 20 /* errors of past attempts a message carries */

typedef struct {
    struct worker *w;
    int index;
    pthread_t tid;
    int started;
    tq_conn *conn;
    int batch; /* messages the next fetch asks for */
    worker_item items[WORKER_QUEUE_BATCH_MAX];
    pthread_mutex_t held_lock; /* guards nheld, items[0..nheld) and running_* */
    int nheld;
    char running_id[TQ_MSG_ID_MAX]; /* the slow task running now, "" for none */
    int64_t running_ttl_ms;         /* its lock's lifetime, renewed by the heartbeat */
    int running_qi;                 /* its queue */
    uint64_t rng;                   /* xorshift state for retry jitter */
    uint64_t connects;              /* conn's connections as last seen */
} task_thread;

/* A message seen in the processing list without a thread holding it. */
typedef struct {
    char *raw;
    size_t len;
    int64_t since_ms; /* monotonic */
    int seen;         /* in the latest listing */
    int qi;           /* the queue whose processing list holds it */
} suspect;

struct worker {
    tq_config cfg;
    tq_url url;
    volatile sig_atomic_t *stop; /* worker_run()'s: set by signals, or by a takeover */
    worker_queue q;
    worker_tasks *tasks;
    atomic_int paused[TQ_CONFIG_QUEUES_MAX]; /* P:{q}:paused as of the last heartbeat */
    char host[64];
    char instance[40];     /* this process, unique: one process per worker id */
    atomic_int superseded; /* another process took the id over */
    int nthreads;
    task_thread *threads;
    tq_conn *hb_conn; /* the heartbeat thread's; the main thread's outside it */
    pthread_t hb_tid;
    int hb_started;
    atomic_int hb_stop;
    _Atomic int64_t grace_end_ms;
    atomic_int resync;         /* a fetch or claim reply may have been lost */
    _Atomic int64_t retry_due; /* earliest retry the threads scheduled, wall ms */
    suspect *suspects;         /* the heartbeat thread's own */
    int nsuspects;
    uint64_t hb_connects;  /* hb_conn's connections as last seen */
    int64_t reap_after_ms; /* monotonic: no reaping before (see heartbeat_once) */
    int64_t started_ms;
    atomic_llong processed, failed, dead, retried;
};

worker *worker_new(const tq_config *cfg, char *err, size_t errlen)
{
    worker *w = calloc(1, sizeof *w);
    if (!w) {
        tq_err_set(TQ_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    char id[TQ_CONFIG_NAME_MAX];
    if (cfg->worker_id[0])
        snprintf(id, sizeof id, "%s", cfg->worker_id);
    else
        tq_proc_default_id(id, sizeof id);
    atomic_store(&w->retry_due, INT64_MAX);
    tq_err_set(TQ_ENOMEM, err, errlen, "out of memory");
    if (tq_config_url(cfg, &w->url, err, errlen) < 0)
        goto err;
    if (worker_queue_init(&w->q, cfg, id) < 0) {
        tq_err_set(TQ_ETOOBIG, err, errlen,
                   "the prefix and worker id make keys too long");
        goto err;
    }
    if (!(w->tasks = worker_tasks_new(cfg->tasks, err, errlen)))
        goto err;
    tq_err_set(TQ_ENOMEM, err, errlen, "out of memory");
    w->nthreads =
        cfg->concurrency > 0 ? cfg->concurrency : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (w->nthreads < 1)
        w->nthreads = 1;
    w->threads = calloc((size_t)w->nthreads, sizeof *w->threads);
    if (!w->threads)
        goto err;
    char name[128];
    snprintf(name, sizeof name, "tickq-worker:%s:hb", id);
    if (!(w->hb_conn = tq_conn_new(&w->url, name)))
        goto err;
    for (int i = 0; i < w->nthreads; i++) {
        task_thread *t = &w->threads[i];
        t->w = w;
        t->index = i;
        t->batch = 1;
        t->rng = (uint64_t)tq_clock_wall_us() * 2654435761u + (uint64_t)i * 40503u + 1;
        pthread_mutex_init(&t->held_lock, NULL);
        snprintf(name, sizeof name, "tickq-worker:%s:%d", id, i);
        if (!(t->conn = tq_conn_new(&w->url, name)))
            goto err;
    }
    gethostname(w->host, sizeof w->host - 1);
    snprintf(w->instance, sizeof w->instance, "%d-%016llx", (int)getpid(),
             (unsigned long long)(w->threads[0].rng * 0x9e3779b97f4a7c15ull));
    return w;
err:
    worker_free(w);
    return NULL;
}

void worker_free(worker *w)
{
    if (!w)
        return;
    for (int i = 0; w->threads && i < w->nthreads; i++) {
        worker_queue_items_clear(w->threads[i].items, WORKER_QUEUE_BATCH_MAX);
        tq_conn_free(w->threads[i].conn);
        pthread_mutex_destroy(&w->threads[i].held_lock);
    }
    for (int i = 0; i < w->nsuspects; i++)
        free(w->suspects[i].raw);
    free(w->suspects);
    free(w->threads);
    tq_conn_free(w->hb_conn);
    worker_tasks_free(w->tasks);
    free(w);
}

/* Sleeps after a failed Redis call: the connection's backoff, or 500 ms
 * after an error reply (a key of the wrong type: it stays so until someone
 * fixes it). Returns early when stopping. */
static void pause_after_error(const worker *w, tq_conn *c, int rc)
{
    int64_t ms = rc == TQ_EREDIS ? tq_conn_backoff_ms(c) : 500;
    tq_clock_sleep_ms(ms > 0 ? ms : 10, w->stop);
}

static void effect_failed(task_thread *t, worker_item *it);

/* Completes items[0..n), retrying while Redis is away or refuses (a key of
 * the wrong type). A retry after a lost reply is safe (see queue.h). Gives
 * up only on a second signal, or at a stop once the grace period is over:
 * the messages then stay in processing and the reaper requeues them. A
 * task whose effect could not be applied is recorded as failed (retried)
 * and completed again. */
static void complete_items(task_thread *t, worker_item *items, int n)
{
    worker *w = t->w;
    int tries = 0;
again:
    for (;;) {
        int rc = worker_queue_complete(t->conn, &w->q, items, n, tq_clock_wall_ms());
        if (rc == 0)
            break;
        if (*w->stop >= 2 ||
            (*w->stop && tq_clock_mono_ms() > atomic_load(&w->grace_end_ms))) {
            tq_warn(
                "giving up completing %d task(s) at shutdown; the reaper will requeue "
                "them",
                n);
            return;
        }
        tries++;
        pause_after_error(w, t->conn, rc);
    }
    int redo = 0;
    for (int i = 0; i < n; i++) {
        worker_item *it = &items[i];
        if (it->op == WORKER_OP_NONE)
            continue;
        if (it->applied == 2) {
            effect_failed(t, it);
            it->answered = 0;
            redo += it->op != WORKER_OP_NONE;
            continue;
        }
        if (!it->applied) {
            /* After a retry, "not applied" usually means the first try was. */
            tq_log(tries ? TQ_LOG_DEBUG : TQ_LOG_WARN,
                   "task %s: no longer in this worker's processing list (requeued by the "
                   "reaper, or completed by an earlier try): completion not applied",
                   it->id);
        } else if (it->op == WORKER_OP_DEAD) {
            atomic_fetch_add(&w->dead, 1);
        } else if (it->op == WORKER_OP_RETRY) {
            atomic_fetch_add(&w->retried, 1);
            int64_t due = atomic_load(&w->retry_due);
            while (it->due_ms < due &&
                   !atomic_compare_exchange_weak(&w->retry_due, &due, it->due_ms))
                ;
        } else if (strcmp(it->status, "success") == 0) {
            atomic_fetch_add(&w->processed, 1);
        } else {
            atomic_fetch_add(&w->failed, 1);
        }
        it->op = WORKER_OP_NONE;
    }
    if (redo)
        goto again;
}

/* Builds the result JSON kept in P:result:<id> and P:history:<schedule>,
 * written by hand: it is built for every task, and a jansson object and
 * printf'd numbers cost more than the rest of a fast task. ctx is NULL
 * when the task did not run (expired). */
static int set_result(worker_item *it, const tq_msg *m, const char *worker_id,
                      const tq_task_ctx *ctx, const json_t *errors)
{
    tq_buf b = {0};
    char num[24];
    tq_buf_puts(&b, "{\"id\":");
    tq_msg_put_string(&b, m->id, strlen(m->id));
    tq_buf_puts(&b, ",\"task\":");
    tq_msg_put_string(&b, m->task, strlen(m->task));
    tq_buf_puts(&b, ",\"queue\":");
    tq_msg_put_string(&b, m->queue, strlen(m->queue));
    tq_buf_puts(&b, ",\"status\":");
    tq_msg_put_string(&b, it->status, strlen(it->status));
    tq_buf_puts(&b, ",\"worker\":");
    tq_msg_put_string(&b, worker_id, strlen(worker_id));
    tq_buf_puts(&b, ",\"attempts\":");
    tq_buf_put(&b, num, (size_t)(tq_fmt_ll(num, m->attempt) - num));
    tq_buf_puts(&b, ",\"started\":");
    tq_msg_put_ms(&b, it->started_ms);
    tq_buf_puts(&b, ",\"finished\":");
    tq_msg_put_ms(&b, it->finished_ms);
    tq_buf_puts(&b, ",\"runtime\":");
    tq_msg_put_ms(&b, it->finished_ms - it->started_ms);
    tq_buf_puts(&b, ",\"exit_code\":");
    if (ctx && ctx->exit_code >= 0) {
        tq_buf_put(&b, num, (size_t)(tq_fmt_ll(num, ctx->exit_code) - num));
    } else {
        tq_buf_puts(&b, "null");
    }
    tq_buf_puts(&b, ",\"output\":");
    if (ctx && ctx->output_len)
        tq_msg_put_string(&b, ctx->output, ctx->output_len);
    else
        tq_buf_puts(&b, "\"\"");
    tq_buf_puts(&b, ",\"error\":");
    if (it->error[0])
        tq_msg_put_string(&b, it->error, strlen(it->error));
    else
        tq_buf_puts(&b, "null");
    if (errors && json_array_size(errors)) {
        tq_buf_puts(&b, ",\"errors\":");
        tq_msg_put_json(&b, errors);
    }
    if (m->schedule[0]) {
        tq_buf_puts(&b, ",\"schedule\":");
        tq_msg_put_string(&b, m->schedule, strlen(m->schedule));
    }
    tq_buf_puts(&b, "}");
    if (b.oom) {
        free(b.p);
        return TQ_ENOMEM;
    }
    it->result = b.p;
    it->result_len = b.len;
    return 0;
}

/* Leaves a message in processing (out of memory): the orphan sweep
 * requeues it, so it is not held until the worker stops. */
static void keep_for_requeue(worker *w, worker_item *it)
{
    it->op = WORKER_OP_NONE;
    atomic_store(&w->resync, 1);
}

static void set_dead(worker *w, worker_item *it, const char *reason, const char *error)
{
    it->op = WORKER_OP_DEAD;
    it->extra = tq_msg_dead_letter(it->raw, it->len, reason, error, w->q.id,
                                   (double)tq_clock_wall_ms() / 1000.0, &it->extra_len);
    snprintf(it->error, sizeof it->error, "%s", error);
    if (!it->extra)
        keep_for_requeue(w, it);
    tq_warn("dead letter (%s): task %s: %s", reason, it->id[0] ? it->id : "?", error);
}

/* The errors of the attempts so far (the message's "errors") plus this
 * one; the last WORKER_ERRORS_KEPT are kept. New reference. */
static json_t *errors_with(const tq_msg *m, const worker_item *it, const char *worker_id)
{
    json_t *old = json_object_get(m->extra, "errors");
    json_t *errors = json_array();
    size_t n = json_is_array(old) ? json_array_size(old) : 0;
    for (size_t i = n > WORKER_ERRORS_KEPT - 1 ? n - (WORKER_ERRORS_KEPT - 1) : 0; i < n;
         i++)
        json_array_append(errors, json_array_get(old, i));
    json_array_append_new(errors, json_pack("{s:i, s:s, s:s, s:f}", "attempt", m->attempt,
                                            "error", it->error, "worker", worker_id,
                                            "finished", (double)it->finished_ms / 1e3));
    return errors;
}

/* A failed run: the next attempt through P:delayed, or the dead letter when
 * the retries are used up. Each attempt's error travels in the message's
 * "errors" and ends in the result and the dead letter. */
static void set_failure(task_thread *t, worker_item *it, tq_msg *m,
                        const tq_task_ctx *ctx)
{
    worker *w = t->w;
    int max = m->max_retries >= 0 ? m->max_retries : w->cfg.max_retries;
    json_t *errors = errors_with(m, it, w->q.id);
    json_object_set(m->extra, "errors", errors);
    const char *reason = "max-retries";
    int64_t due = worker_retry_due_ms(w->cfg.retry_base_ms, w->cfg.retry_cap_ms,
                                      m->attempt, max, it->finished_ms, &t->rng);
    if (due >= 0) {
        it->due_ms = due;
        m->attempt++;
        it->extra = tq_msg_encode(m, &it->extra_len);
        if (!it->extra) {
            /* Over TQ_MSG_MAX with the errors: keep only this attempt's. */
            json_t *last = json_array();
            json_array_append(last, json_array_get(errors, json_array_size(errors) - 1));
            json_object_set_new(m->extra, "errors", last);
            it->extra = tq_msg_encode(m, &it->extra_len);
        }
        m->attempt--;
        if (it->extra) {
            it->op = WORKER_OP_RETRY;
            it->status = "retrying";
            tq_info("task %s (%s) failed (attempt %d of %d): %s; retry in %.3f s", m->id,
                    m->task, m->attempt, max + 1, it->error,
                    (double)(it->due_ms - it->finished_ms) / 1e3);
        } else {
            reason = "too-big"; /* the next attempt cannot be written: dead letter */
        }
    }
    if (!it->extra) {
        it->op = WORKER_OP_DEAD;
        it->status = "failure";
        size_t len;
        json_object_set(m->extra, "errors", errors);
        char *last = tq_msg_encode(m, &len); /* with every attempt's error */
        char why[700];
        snprintf(why, sizeof why, "%s (attempt %d of %d)%s", it->error, m->attempt,
                 max + 1,
                 strcmp(reason, "too-big") == 0
                     ? "; the next attempt would be over the 1 MiB limit"
                     : "");
        /* A message too big to take its errors is kept as it came. */
        it->extra =
            tq_msg_dead_letter(last ? last : it->raw, last ? len : it->len, reason, why,
                               w->q.id, (double)it->finished_ms / 1e3, &it->extra_len);
        free(last);
        tq_warn("dead letter (%s): task %s (%s): %s", reason, m->id, m->task, why);
    }
    if (!it->extra || set_result(it, m, w->q.id, ctx, errors) < 0)
        keep_for_requeue(w, it); /* out of memory */
    json_decref(errors);
}

/* The task ran, but the completion could not apply its effect (the key
 * holds no integer, or one too large): the run is a failure, retried or
 * dead-lettered like any other, and the worker says why. */
static void effect_failed(task_thread *t, worker_item *it)
{
    worker *w = t->w;
    char err[512];
    tq_msg m;
    free(it->result);
    free(it->extra);
    it->result = it->extra = NULL;
    if (tq_msg_decode(&m, it->raw, it->len, err, sizeof err) < 0) {
        keep_for_requeue(w, it); /* it decoded before: out of memory */
        return;
    }
    snprintf(it->error, sizeof it->error,
             "its effect could not be applied: the key %s holds no integer that %lld "
             "can be added to",
             it->effect_key, (long long)it->effect_by);
    tq_error("task %s (%s): %s", m.id, m.task, it->error);
    it->effect_key[0] = '\0';
    set_failure(t, it, &m, NULL);
    tq_msg_deinit(&m);
}

/* Keeps the id of the task a thread runs, for the heartbeat's lock
 * extension. */
static void set_running(task_thread *t, const char *id, int64_t ttl_ms, int qi)
{
    pthread_mutex_lock(&t->held_lock);
    tq_fmt_copy(t->running_id, sizeof t->running_id, id ? id : "");
    t->running_ttl_ms = ttl_ms;
    t->running_qi = qi;
    pthread_mutex_unlock(&t->held_lock);
}

/* Runs a decoded message's task and records the outcome in *it. */
static void run_task(task_thread *t, int i, int *done, const tq_task_def *task, tq_msg *m)
{
    worker *w = t->w;
    worker_item *it = &t->items[i];
    int64_t timeout_ms =
        m->timeout > 0 ? (int64_t)(m->timeout * 1000.0) : w->cfg.timeout_ms;
    tq_task_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.id = m->id;
    ctx.task = m->task;
    ctx.attempt = m->attempt;
    ctx.args = m->args;
    ctx.kwargs = m->kwargs;
    ctx.stop = w->stop;
    ctx.grace_end_ms = &w->grace_end_ms;
    ctx.exit_code = -1;

    if (!(task->flags & TQ_TASK_FAST)) {
        /* Complete the fast ones before it, so they do not wait for it, and
         * say now that it started. */
        if (i > *done) {
            complete_items(t, t->items + *done, i - *done);
            *done = i;
        }
        set_running(t, m->id, timeout_ms + WORKER_QUEUE_LOCK_MARGIN_MS, it->qi);
        worker_queue_started(t->conn, &w->q, tq_clock_wall_ms(), it);
    }
    ctx.deadline_mono_ms = tq_clock_mono_ms() + timeout_ms;
    it->started_ms = tq_clock_wall_ms();
    int rc = task->run(&ctx);
    it->finished_ms = tq_clock_wall_ms();
    if (!(task->flags & TQ_TASK_FAST))
        set_running(t, NULL, 0, 0);

    if (ctx.aborted) {
        tq_info("task %s (%s) stopped by the shutdown: it will be requeued", m->id,
                m->task);
        return;
    }
    tq_fmt_copy(it->schedule, sizeof it->schedule, m->schedule);
    if (rc == 0 && !ctx.timed_out) {
        it->op = WORKER_OP_DONE;
        it->status = "success";
        if (ctx.counter[0]) {
            tq_keys_fmt(w->cfg.prefix, TQ_KEY_COUNTER, w->q.qk[it->qi].name, ctx.counter,
                        it->effect_key, sizeof it->effect_key);
            it->effect_by = ctx.counter_by;
        }
        if (set_result(it, m, w->q.id, &ctx, json_object_get(m->extra, "errors")) < 0)
            keep_for_requeue(w, it);
        tq_debug("task %s (%s): success in %lld ms", m->id, m->task,
                 (long long)(it->finished_ms - it->started_ms));
        return;
    }
    if (ctx.timed_out)
        snprintf(it->error, sizeof it->error, "timed out after %.3f s%s%.400s",
                 (double)timeout_ms / 1e3, ctx.error[0] ? ": " : "", ctx.error);
    else
        snprintf(it->error, sizeof it->error, "%s", ctx.error[0] ? ctx.error : "failed");
    set_failure(t, it, m, &ctx);
}

/* How late the beat published a scheduled message, for the lateness
 * histogram (common/metrics.h): only with both time stamps, and only for a
 * first attempt, so that each published tick counts once (its retries
 * carry the same stamps). A message enqueued before its time (a clock
 * step, a hand-made one) counts as on time. */
static void set_lateness(worker_item *it, const tq_msg *m)
{
    it->has_lateness =
        m->schedule[0] && m->attempt == 1 && m->scheduled_at > 0 && m->enqueued_at > 0;
    double late = m->enqueued_at - m->scheduled_at;
    it->lateness_ms = it->has_lateness && late > 0 ? (int64_t)(late * 1e3 + 0.5) : 0;
}

/* Decodes fetched message i and runs it, or decides it without running:
 * dead letter (undecodable, unknown task) or expired. Returns 1 if no slow
 * task ran. */
static int run_item(task_thread *t, int i, int *done)
{
    worker *w = t->w;
    worker_item *it = &t->items[i];
    char err[512];
    tq_msg m;

    /* A claimed message's it->id is the id the broker locked: a message
     * dead-lettered here releases that lock, whatever the decoder says. */
    if (tq_msg_decode(&m, it->raw, it->len, err, sizeof err) < 0) {
        set_dead(w, it, "undecodable", err);
        return 1;
    }
    int same_id = !it->claimed || strcmp(it->id, m.id) == 0;
    if (!it->claimed)
        tq_fmt_copy(it->id, sizeof it->id, m.id);
    tq_fmt_copy(it->task, sizeof it->task, m.task);
    const tq_task_def *task = worker_tasks_find(w->tasks, m.task);
    it->known = task != NULL;
    set_lateness(it, &m);
    int fast = 1;
    if (!it->claimed) {
        set_dead(w, it, "undecodable",
                 "Redis' JSON parser could not read the field 'id', so the message "
                 "cannot be locked");
    } else if (!same_id) {
        snprintf(err, sizeof err,
                 "field 'id': Redis' JSON parser and the worker's read different ids "
                 "(%.100s, %.100s)",
                 it->id, m.id);
        set_dead(w, it, "undecodable", err);
    } else if (!task) {
        snprintf(err, sizeof err, "unknown task '%s'", m.task);
        set_dead(w, it, "unknown-task", err);
    } else if (m.expires_at > 0 && (double)tq_clock_wall_ms() / 1e3 > m.expires_at) {
        it->op = WORKER_OP_DONE;
        it->status = "expired";
        it->started_ms = it->finished_ms = tq_clock_wall_ms();
        snprintf(it->schedule, sizeof it->schedule, "%s", m.schedule);
        snprintf(it->error, sizeof it->error, "expired at %.3f, not run", m.expires_at);
        if (set_result(it, &m, w->q.id, NULL, json_object_get(m.extra, "errors")) < 0)
            keep_for_requeue(w, it);
        it->started_ms = 0; /* no task-started event */
        tq_info("task %s (%s) expired: not run", m.id, m.task);
    } else {
        fast = task->flags & TQ_TASK_FAST;
        run_task(t, i, done, task, &m);
    }
    tq_msg_deinit(&m);
    return fast;
}

/* Runs a fetched batch. Once the process is stopping, tasks not yet
 * started are left in processing for the final requeue. Returns 1 if every
 * task was fast. */
static int run_batch(task_thread *t, int n)
{
    const worker *w = t->w;
    int all_fast = 1, done = 0;
    for (int i = 0; i < n && !*w->stop; i++)
        all_fast &= run_item(t, i, &done);
    if (n > done)
        complete_items(t, t->items + done, n - done);
    return all_fast;
}

static void *task_thread_main(void *arg)
{
    task_thread *t = arg;
    worker *w = t->w;
    unsigned bad = 0; /* queues whose key is of the wrong type */
    while (!*w->stop) {
        int64_t now = tq_clock_wall_ms();
        int n =
            worker_queue_fetch(t->conn, &w->q, now, t->batch, w->paused, t->items, &bad);
        if (n == 0) {
            /* Block on the first queue that is not paused (or broken); if
             * all are, the next heartbeat may say otherwise. */
            int qi = 0;
            while (qi < w->q.nqueues && (atomic_load(&w->paused[qi]) || bad >> qi & 1))
                qi++;
            if (qi < w->q.nqueues)
                n = worker_queue_wait(t->conn, &w->q, qi, now,
                                      w->q.nqueues > 1 ? 0.1 : 1.0, &t->items[0]);
            else
                tq_clock_sleep_ms(200, w->stop);
        }
        if (n < 0) {
            atomic_store(&w->resync, 1); /* what was moved may be unknown */
            pause_after_error(w, t->conn, n);
            continue;
        }
        /* A new connection may be to another Redis: a replica promoted by
         * a failover holds a prefix of the old master's writes, and a
         * completion lost with the old master left its message in our
         * processing list there, held by no thread. The sweep requeues it. */
        if (tq_conn_connects(t->conn) != t->connects) {
            if (t->connects)
                atomic_store(&w->resync, 1);
            t->connects = tq_conn_connects(t->conn);
        }
        if (n == 0)
            continue;
        pthread_mutex_lock(&t->held_lock);
        t->nheld = n;
        pthread_mutex_unlock(&t->held_lock);
        int all_fast = run_batch(t, n);
        pthread_mutex_lock(&t->held_lock);
        t->nheld = 0;
        pthread_mutex_unlock(&t->held_lock);
        worker_queue_items_clear(t->items, n);
        if (!all_fast)
            t->batch = 1;
        else if (n == t->batch && t->batch < WORKER_QUEUE_BATCH_MAX)
            t->batch *= 2;
    }
    return NULL;
}

/* 1 if a task thread holds a message with these bytes. */
static int held_by_thread(worker *w, const char *raw, size_t len)
{
    int found = 0;
    for (int i = 0; i < w->nthreads && !found; i++) {
        task_thread *t = &w->threads[i];
        pthread_mutex_lock(&t->held_lock);
        for (int j = 0; j < t->nheld && !found; j++)
            found = t->items[j].len == len && memcmp(t->items[j].raw, raw, len) == 0;
        pthread_mutex_unlock(&t->held_lock);
    }
    return found;
}

/* After a lost fetch or claim reply, messages may sit in this worker's
 * processing list, locked or not, with no thread knowing them: without
 * this sweep they would wait for the worker to stop. Each heartbeat while
 * there is doubt, list the processing list; a message that no thread has
 * held for ORPHAN_AGE_MS is requeued (and this worker's lock on it
 * released). If its lost reply had in fact been read late, the thread's
 * completion finds it gone and applies nothing, and the requeued delivery
 * runs it: still once. */
static void sweep_orphans(worker *w)
{
    if (!atomic_exchange(&w->resync, 0) && w->nsuspects == 0)
        return;
    int64_t now = tq_clock_mono_ms();
    for (int i = 0; i < w->nsuspects; i++)
        w->suspects[i].seen = 0;
    for (int qi = 0; qi < w->q.nqueues; qi++) {
        redisReply *r;
        if (worker_queue_list_processing(w->hb_conn, &w->q, qi, &r) < 0) {
            atomic_store(&w->resync, 1);
            for (int i = 0; i < w->nsuspects; i++) /* keep them for next time */
                w->suspects[i].seen |= w->suspects[i].qi >= qi;
            break;
        }
        for (size_t e = 0; e < r->elements; e++) {
            const redisReply *m = r->element[e];
            if (m->type != REDIS_REPLY_STRING || held_by_thread(w, m->str, m->len))
                continue;
            int i = 0;
            while (i < w->nsuspects &&
                   (w->suspects[i].qi != qi || w->suspects[i].len != m->len ||
                    memcmp(w->suspects[i].raw, m->str, m->len)))
                i++;
            if (i < w->nsuspects) {
                if (now - w->suspects[i].since_ms < ORPHAN_AGE_MS) {
                    w->suspects[i].seen = 1;
                } else if (worker_queue_requeue_orphan(w->hb_conn, &w->q, qi,
                                                       tq_clock_wall_ms(), m->str,
                                                       m->len) >= 0) {
                    tq_warn(
                        "requeued a message left in processing by a lost redis reply");
                } else {
                    w->suspects[i].seen = 1; /* try again next time */
                }
                continue;
            }
            suspect *grown =
                realloc(w->suspects, sizeof *grown * (size_t)(w->nsuspects + 1));
            char *copy = malloc(m->len ? m->len : 1);
            if (!grown || !copy) {
                if (grown)
                    w->suspects = grown;
                free(copy);
                atomic_store(&w->resync, 1);
                break;
            }
            w->suspects = grown;
            memcpy(copy, m->str, m->len);
            w->suspects[w->nsuspects++] = (suspect){copy, m->len, now, 1, qi};
        }
        freeReplyObject(r);
    }
    int k = 0;
    for (int i = 0; i < w->nsuspects; i++) {
        if (w->suspects[i].seen)
            w->suspects[k++] = w->suspects[i];
        else
            free(w->suspects[i].raw);
    }
    w->nsuspects = k;
}

/* Keeps the locks of running slow tasks alive for as long as they run. */
static void extend_locks(worker *w)
{
    for (int i = 0; i < w->nthreads; i++) {
        task_thread *t = &w->threads[i];
        char id[TQ_MSG_ID_MAX], key[TQ_KEYS_MAX];
        pthread_mutex_lock(&t->held_lock);
        snprintf(id, sizeof id, "%s", t->running_id);
        int64_t ttl = t->running_ttl_ms;
        int qi = t->running_qi;
        pthread_mutex_unlock(&t->held_lock);
        if (id[0] &&
            tq_keys_fmt(w->cfg.prefix, TQ_KEY_LOCK, w->q.qk[qi].name, id, key,
                        sizeof key) >= 0 &&
            tq_lock_extend(w->hb_conn, key, w->q.id, ttl) == 0)
            tq_warn("task %s: its lock is held by someone else now", id);
    }
}

static void heartbeat_once(worker *w)
{
    /* Every queue name and a comma after each fit. */
    char pid[16], conc[16], started[24], now_s[24], processed[24], failed[24];
    char queues[TQ_CONFIG_QUEUES_MAX * TQ_CONFIG_NAME_MAX];
    int64_t now = tq_clock_wall_ms();
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    snprintf(conc, sizeof conc, "%d", w->nthreads);
    snprintf(started, sizeof started, "%lld", (long long)w->started_ms);
    snprintf(now_s, sizeof now_s, "%lld", (long long)now);
    snprintf(processed, sizeof processed, "%lld", (long long)atomic_load(&w->processed));
    snprintf(failed, sizeof failed, "%lld", (long long)atomic_load(&w->failed));
    size_t used = 0;
    queues[0] = '\0';
    for (int i = 0; i < w->cfg.nqueues; i++)
        used += (size_t)snprintf(queues + used, sizeof queues - used, "%s%s",
                                 i ? "," : "", w->cfg.queues[i]);
    const char *info[] = {"host",      w->host,       "pid",       pid,       "queues",
                          queues,      "concurrency", conc,        "started", started,
                          "heartbeat", now_s,         "processed", processed, "failed",
                          failed,      NULL};
    int rc = worker_queue_heartbeat(w->hb_conn, &w->q, w->instance, now, info);
    if (rc == 0 && !atomic_exchange(&w->superseded, 1)) {
        tq_error("another process has taken over worker id %s (this one looked dead "
                 "for longer than the liveness window): stopping",
                 w->q.id);
        *w->stop = 1;
    }
    if (rc <= 0)
        return;
    worker_queue_event(w->hb_conn, &w->q, "worker-heartbeat", now);
    int paused[TQ_CONFIG_QUEUES_MAX];
    if (worker_queue_paused(w->hb_conn, &w->q, paused) == 0)
        for (int i = 0; i < w->q.nqueues; i++)
            atomic_store(&w->paused[i], paused[i]);
    extend_locks(w);
    /* After a Redis outage every worker's heartbeat is old, and the others
     * may not have reconnected yet: the reaper waits one liveness window
     * from its own reconnection, lest it reap workers that are alive. */
    int64_t mono = tq_clock_mono_ms();
    if (tq_conn_connects(w->hb_conn) != w->hb_connects) {
        if (w->hb_connects) {
            w->reap_after_ms = mono + w->q.liveness_ms;
            atomic_store(&w->resync, 1);
        }
        w->hb_connects = tq_conn_connects(w->hb_conn);
    }
    if (mono >= w->reap_after_ms)
        worker_queue_reap(w->hb_conn, &w->q, now);
    sweep_orphans(w);
}

/* The heartbeat thread: a heartbeat (with reaping, lock extension and the
 * orphan sweep) every HEARTBEAT_MS, and the promotion of delayed messages
 * whenever one falls due, so that a retry waits its backoff and not up to a
 * heartbeat more. */
static void *heartbeat_main(void *arg)
{
    worker *w = arg;
    int64_t next_hb = 0, next_due = 0;
    while (!atomic_load(&w->hb_stop)) {
        int64_t mono = tq_clock_mono_ms(), wall = tq_clock_wall_ms();
        if (mono >= next_hb) {
            next_hb = mono + HEARTBEAT_MS;
            heartbeat_once(w);
            next_due = 0; /* a client may have added delayed messages: look */
        }
        int64_t hint = atomic_exchange(&w->retry_due, INT64_MAX);
        if (hint < next_due)
            next_due = hint;
        if (wall >= next_due) {
            next_due = INT64_MAX;
            for (int i = 0; i < w->q.nqueues; i++) {
                int64_t due = INT64_MAX;
                if (tq_delayed_promote_next(w->hb_conn, w->cfg.prefix, w->q.qk[i].name,
                                            wall, TQ_DELAYED_BATCH, &due) < 0)
                    due = wall + 100;
                if (due < next_due)
                    next_due = due;
            }
        }
        tq_clock_sleep_us(10000);
    }
    return NULL;
}

/* Registers the worker and requeues what an earlier process with the same
 * id left in its processing list. Waits for Redis. A live process with the
 * same id (its heartbeat moves) makes this one refuse to start: two
 * processes under one id would requeue and ack each other's messages.
 * One whose heartbeat does not move for the liveness window is dead, and
 * this one takes its place. Returns 0; TQ_EBUSY (the id is in use); or
 * TQ_ESTOPPED if a signal came first. */
static int register_worker(worker *w)
{
    int64_t first_hb = -1;
    int checked = 0; /* the data was looked at for the old layout */
    for (;;) {
        if (*w->stop)
            return TQ_ESTOPPED;
        int64_t now = tq_clock_wall_ms();
        worker_holder other;
        int rc = 0;
        if (!checked) {
            char found[512];
            rc = tq_broker_old_layout(w->hb_conn, w->cfg.prefix, found, sizeof found);
            if (rc > 0) {
                tq_error(
                    "redis holds data of tickq's key layout v1 (%s): this version uses "
                    "layout v2 and would not see it; drain and delete it, or "
                    "choose another --prefix (docs/PROTOCOL.md, \"From layout v1\")",
                    found);
                return TQ_EBUSY;
            }
            checked = rc == 0;
        }
        if (rc == 0)
            rc = worker_queue_register(w->hb_conn, &w->q, w->instance, now, &other);
        if (rc == 0) {
            if (first_hb < 0) {
                first_hb = other.heartbeat_ms;
                tq_warn("worker id %s is held by another process (host %s, pid %s, last "
                        "heartbeat %lld ms ago): waiting up to %lld ms to see whether it "
                        "is alive",
                        w->q.id, other.host, other.pid,
                        (long long)(now - other.heartbeat_ms),
                        (long long)w->q.liveness_ms);
            } else if (other.heartbeat_ms != first_hb) {
                tq_error("worker id %s is in use by a live worker (host %s, pid %s): "
                         "choose another --worker-id",
                         w->q.id, other.host, other.pid);
                return TQ_EBUSY;
            }
            tq_clock_sleep_ms(200, w->stop);
            continue;
        }
        if (rc > 0) {
            const char *info[] = {"host", w->host, NULL};
            rc = worker_queue_heartbeat(w->hb_conn, &w->q, w->instance, now, info);
        }
        if (rc > 0) {
            rc = worker_queue_requeue(w->hb_conn, &w->q, w->instance, now, 0);
            if (rc > 0)
                tq_warn("requeued %d message(s) left by an earlier worker with id %s", rc,
                        w->q.id);
            if (rc >= 0) {
                worker_queue_event(w->hb_conn, &w->q, "worker-online", now);
                return 0;
            }
        }
        pause_after_error(w, w->hb_conn, rc);
    }
}

/* Final requeue and deregistration. With Redis away it tries until the
 * grace period is over (at least a second), or a second signal, as a
 * completion does: then the messages stay in processing and the reaper
 * requeues them once the worker's heartbeat is old. */
static void deregister_worker(worker *w)
{
    int64_t end = atomic_load(&w->grace_end_ms);
    if (end < tq_clock_mono_ms() + 1000)
        end = tq_clock_mono_ms() + 1000;
    for (;;) {
        int rc =
            worker_queue_requeue(w->hb_conn, &w->q, w->instance, tq_clock_wall_ms(), 1);
        if (rc >= 0) {
            if (rc > 0)
                tq_info("requeued %d message(s) not run before the stop", rc);
            worker_queue_event(w->hb_conn, &w->q, "worker-offline", tq_clock_wall_ms());
            return;
        }
        int64_t left = end - tq_clock_mono_ms();
        if (*w->stop >= 2 || left <= 0)
            break;
        int64_t ms = tq_conn_backoff_ms(w->hb_conn);
        ms = ms <= 0 ? 50 : ms;
        tq_clock_sleep_us((ms < left ? ms : left) * 1000);
    }
    tq_warn("could not reach redis to requeue and deregister; the reaper will do it");
}

int worker_run(worker *w, volatile sig_atomic_t *stop)
{
    w->stop = stop;
    char where[TQ_URL_SHOWN_MAX];
    tq_url_redacted(&w->url, where, sizeof where);
    w->started_ms = tq_clock_wall_ms();
    tq_info("worker %s starting: %d thread(s), queues %s%s, redis %s", w->q.id,
            w->nthreads, w->cfg.queues[0], w->cfg.nqueues > 1 ? ",..." : "", where);

    int rc = register_worker(w);
    if (rc == TQ_EBUSY)
        return 2;
    if (rc < 0) {
        tq_info("stopped before redis was reachable");
        return 0;
    }
    if (pthread_create(&w->hb_tid, NULL, heartbeat_main, w) == 0)
        w->hb_started = 1;
    else
        tq_error("pthread_create(heartbeat): cannot start; the worker may be reaped");
    for (int i = 0; i < w->nthreads; i++) {
        task_thread *t = &w->threads[i];
        if (pthread_create(&t->tid, NULL, task_thread_main, t) == 0)
            t->started = 1;
        else
            tq_error("pthread_create(task thread %d) failed", i);
    }
    tq_info("worker %s ready", w->q.id);

    while (!*w->stop)
        tq_clock_sleep_us(50000);
    atomic_store(&w->grace_end_ms, tq_clock_mono_ms() + w->cfg.grace_ms);
    tq_info(
        "stopping: no new tasks; running ones have %.1f s (a second signal stops now)",
        (double)w->cfg.grace_ms / 1000.0);

    uint64_t roundtrips = 0;
    for (int i = 0; i < w->nthreads; i++) {
        if (w->threads[i].started)
            pthread_join(w->threads[i].tid, NULL);
        roundtrips += tq_conn_roundtrips(w->threads[i].conn);
    }
    atomic_store(&w->hb_stop, 1);
    if (w->hb_started)
        pthread_join(w->hb_tid, NULL);
    if (!atomic_load(&w->superseded))
        deregister_worker(w); /* else the id, its hash and list are another's now */
    tq_info("worker %s stopped: processed=%lld failed=%lld retried=%lld dead=%lld "
            "roundtrips=%llu",
            w->q.id, (long long)atomic_load(&w->processed),
            (long long)atomic_load(&w->failed), (long long)atomic_load(&w->retried),
            (long long)atomic_load(&w->dead), (unsigned long long)roundtrips);
    return atomic_load(&w->superseded) ? 1 : 0;
}
