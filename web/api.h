/* web_api: the JSON reads of tickq-web (docs/API.md): overview, queues,
 * workers, schedules, tasks and dead letters, each computed from Redis at
 * request time (the web holds no state). Every handler answers 200 with
 * JSON, or a JSON error: 400 for a bad query parameter, 404 for an unknown
 * name or id, 503 when Redis is unavailable. */
#ifndef TQ_WEB_API_H
#define TQ_WEB_API_H

#include <jansson.h>
#include <stddef.h>

#include "common/metrics.h"
#include "web/req.h"

#define WEB_API_LIMIT_MAX 1000 /* items one page may hold */
#define WEB_API_LIMIT_DEF 50   /* items a page holds when ?limit= is absent */
#define WEB_API_READ_BUDGET                                                              \
    (4 * 1024 * 1024)                       /* bytes of list entries one read answers:   \
                                               a page stops early past it */
#define WEB_API_ENTRY_MAX (8 * 1024 * 1024) /* a longer entry is shown as its size */
#define WEB_API_TASKS_MAX TQ_METRICS_TASKS_MAX /* finished tasks P:tasks keeps */

/* The queues as GET /api/queues shows them, for other modules (metrics):
 * a new array of {"name", "depth", "paused", "latency_s", "processing",
 * "processed", "failed"}, one per known queue (a live worker's queue, a
 * schedule's, a paused one, "default", or one with messages waiting), or
 * NULL when Redis could not be read, with the HTTP status to answer in
 * *status and a sentence in err. */
json_t *web_api_queue_list(web_req *rq, int *status, char *err, size_t errlen);

int web_api_overview(web_req *rq);  /* GET /api/overview */
int web_api_queues(web_req *rq);    /* GET /api/queues */
int web_api_workers(web_req *rq);   /* GET /api/workers */
int web_api_schedules(web_req *rq); /* GET /api/schedules */
int web_api_schedule(web_req *rq);  /* GET /api/schedules/<name> */
int web_api_tasks(web_req *rq);     /* GET /api/tasks?state=&queue=&task=&schedule=&q= */
int web_api_task(web_req *rq);      /* GET /api/tasks/<id> */
int web_api_dead(web_req *rq);      /* GET /api/dead?limit=&cursor= */
int web_api_audit(web_req *rq);     /* GET /api/audit?limit=&cursor= */

#endif
