/* web_ops: the mutations of tickq-web's API (docs/API.md). The dispatcher
 * has already checked the bearer token and read the body; each handler
 * validates everything before its first write (a bad body is 400 or 422
 * naming the field), makes its change in Redis (one script where several
 * keys change together), fills rq->audit with what it did, and answers 2xx
 * with a JSON body. A key of the wrong type is a 500 that names it, with
 * nothing written; Redis out of reach is a 503. Each handler blocks on a
 * few Redis round trips (the dead-letter ones on up to 200: pages of 100
 * letters, at most 10 000 letters a request) and returns the status it
 * sent.
 *
 * PUT /api/schedules/<name>: a definition (docs/SCHEDULES.md), checked by
 *   the beat's decoder (UTC for a cron schedule without "tz"), stored as
 *   given with "name" first. 201 {"created": true, "schedule": {...}} or
 *   200 {"created": false, ...}. 422 for a bad field, a "name" other than
 *   the path's or messages over 1 MiB; 400 for text that is not JSON.
 * DELETE /api/schedules/<name>: 200 {"deleted": name}, 404. Its tick state
 *   (P:schedule-state) goes too: the name added again is a new schedule.
 * POST /api/schedules/<name>/run: a tick now, id "<name>@run-<now ms>-<8 hex>".
 *   202 {"id", "queue"}; 404; 409 when the definition does not decode.
 * POST /api/schedules/<name>/pause, /resume: "enabled" in the definition,
 *   compare-and-set. 200 {"name", "enabled"}; 404; 409 (does not decode,
 *   or kept changing).
 * POST /api/queues/<q>/pause, /resume: P:paused. 200 {"queue", "paused"};
 *   400 for a bad queue name.
 * POST /api/tasks: one message, checked by the worker's decoder; an absent
 *   "id" becomes "api-<unix ms>-<16 hex>", an absent enqueued_at now.
 *   201 {"id", "queue"}; 422 naming the field; 413 over 1 MiB.
 * POST /api/tasks/<id>/retry: the task's newest dead letter (among the
 *   newest 10 000) back on its queue as attempt 1 without "errors", its
 *   done marker and delivery count cleared. 202 {"id", "queue"}; 404 (no
 *   dead letter for it); 409 (its message does not decode or is base64).
 * POST /api/dead/requeue: no body or {} for all (oldest first), or {"ids":
 *   [...]}; as retry, each. 200 {"requeued": n, "skipped": [{"index",
 *   "reason", "id"?}], "remaining": m} (+ "not_found": [ids] with ids);
 *   index is the letter's place in P:dead when read (0 = newest), remaining
 *   the letters this request did not read. 400 for another body.
 * DELETE /api/dead: 200 {"deleted": n}. */
#ifndef TQ_WEB_OPS_H
#define TQ_WEB_OPS_H

#include "web/req.h"

int web_ops_schedule_put(web_req *rq);    /* PUT /api/schedules/<name> */
int web_ops_schedule_delete(web_req *rq); /* DELETE /api/schedules/<name> */
int web_ops_schedule_run(web_req *rq);    /* POST /api/schedules/<name>/run */
int web_ops_schedule_pause(web_req *rq);  /* POST /api/schedules/<name>/pause */
int web_ops_schedule_resume(web_req *rq); /* POST /api/schedules/<name>/resume */
int web_ops_queue_pause(web_req *rq);     /* POST /api/queues/<q>/pause */
int web_ops_queue_resume(web_req *rq);    /* POST /api/queues/<q>/resume */
int web_ops_task_enqueue(web_req *rq);    /* POST /api/tasks */
int web_ops_task_retry(web_req *rq);      /* POST /api/tasks/<id>/retry */
int web_ops_dead_requeue(web_req *rq);    /* POST /api/dead/requeue */
int web_ops_dead_purge(web_req *rq);      /* DELETE /api/dead */

#endif
