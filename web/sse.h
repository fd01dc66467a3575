/* web_sse: GET /api/events, the event stream P:events as Server-Sent
 * Events (docs/PROTOCOL.md, "Events", has the fields).
 *
 * The response is "200", Content-Type text/event-stream, Cache-Control
 * no-store, no Content-Length and "Connection: close": the body is the
 * stream, which ends when the connection does. It opens with
 * "retry: WEB_SSE_RETRY_MS" and then sends each event as
 *
 *     id: <stream id>
 *     event: <its "event" field>
 *     data: <its fields as one compact JSON object>
 *
 * followed by an empty line. The JSON object holds every field with a
 * non-empty value: "ts" (Unix ms) and "runtime" (seconds) as numbers,
 * the others as strings (bytes that are not UTF-8 become U+FFFD).
 *
 * Where it starts: after the entry named by the Last-Event-ID header (what
 * a browser's EventSource sends when it reconnects) or else by
 * ?last_event_id=, which must be a stream id "<ms>-<seq>" (anything else is
 * 400); without either, after the newest entry at connection time (only
 * new events). ?type= (event names, comma-separated), ?queue= and ?task=
 * keep only events whose field equals the value (an event without the field
 * never matches; an empty value filters nothing).
 *
 * The handler holds its civetweb thread while the client listens, reading
 * with XREAD BLOCK in WEB_SSE_SLICE_MS slices (below the connection's
 * command timeout, WEB_REDIS_TIMEOUT_MS), so that a stopping server ends
 * it within about a slice. civetweb gives a handler no socket to watch,
 * and a client that went away shows only when a write to it fails (the
 * first write after its close draws the peer's reset, the next one fails):
 * so a ": ping" comment goes out whenever nothing else was written for
 * WEB_SSE_PING_MS, which frees a gone client's thread and slot within
 * about two pings and keeps proxies from closing an idle stream. A Redis
 * that goes away leaves the stream open: reads are retried with the
 * connection's backoff and resume after the last entry read, so nothing
 * is lost or repeated. P:events holding another type ends the stream with
 * one "event: error" whose data is {"error": "..."}.
 *
 * At most WEB_SSE_CLIENTS_MAX streams are open at once (the server keeps
 * that many civetweb threads for them); one more is answered 503 with
 * Retry-After. HEAD gets the stream's headers and no body. */
#ifndef TQ_WEB_SSE_H
#define TQ_WEB_SSE_H

#include "web/req.h"

#define WEB_SSE_CLIENTS_MAX 128
#define WEB_SSE_SLICE_MS 1000   /* one XREAD BLOCK; < WEB_REDIS_TIMEOUT_MS */
#define WEB_SSE_PING_MS 1000    /* silence after which ": ping" is written */
#define WEB_SSE_RETRY_MS 2000   /* a browser reconnects after this */
#define WEB_SSE_RETRY_AFTER_S 5 /* Retry-After of the 503 when full */

/* GET (and HEAD) /api/events. Returns the status sent (200 for a stream,
 * whenever it ends). Blocks while the client listens. */
int web_sse_events(web_req *rq);

#endif
