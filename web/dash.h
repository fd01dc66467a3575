/* web_dash: the dashboard, GET /dashboard: one HTML page with its CSS and
 * JavaScript inlined, embedded into the binary at build time from
 * web/dashboard/index.html (no CDN, no other origin). It reads the JSON API
 * and follows /api/events; it asks for the API token the first time a
 * person acts and keeps it in the tab's sessionStorage.
 *
 * The page is served with a Content-Security-Policy that lets only its own
 * inline script and style run, named by their SHA-256 (no 'unsafe-inline':
 * the page shows text that anyone who can push a message controls), may
 * connect only to its own origin, and may not be framed; with
 * X-Content-Type-Options: nosniff, X-Frame-Options: DENY and
 * Referrer-Policy: no-referrer. */
#ifndef TQ_WEB_DASH_H
#define TQ_WEB_DASH_H

#include "web/req.h"

/* GET /dashboard: the page, 200 text/html with the headers above. */
int web_dash_get(web_req *rq);

/* The Content-Security-Policy header value of the page: borrowed, static,
 * computed once from the embedded page at the first call (thread-safe). */
const char *web_dash_csp(void);

#endif
