/*
 * The admin endpoint: metrics, health and status over plain HTTP with
 * libevent's evhttp, meant for loopback.  Read-only; see admin.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "admin.h"
#include "log.h"
#include "metrics.h"

#define ADMIN_TIMEOUT_S		10
#define ADMIN_MAX_HEADERS	8192

struct admin {
	struct evhttp		*a_http;
	char			*a_daemon;
	char			*a_id;
	admin_status_cb		 a_cb;
	void			*a_arg;
	admin_prepare_cb	 a_prepare;
	void			*a_prepare_arg;
	struct timespec		 a_start;
	struct metric		*a_requests;
};

/* Send body (may be NULL) with the given code and content type. */
static void
admin_reply(struct evhttp_request *req, int code, const char *type,
    struct evbuffer *body)
{
	const char	*reason;

	switch (code) {
	case 200:
		reason = "OK";
		break;
	case 404:
		reason = "Not Found";
		break;
	case 405:
		reason = "Method Not Allowed";
		break;
	default:
		reason = "Internal Server Error";
		break;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

/* Serialise json (stolen) as the reply body, or a 500 if that fails. */
static void
admin_reply_json(struct evhttp_request *req, int code, json_t *json)
{
	struct evbuffer	*b;
	char		*s;

	s = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;
	json_decref(json);
	if (s == NULL || (b = evbuffer_new()) == NULL) {
		free(s);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_printf(b, "%s\n", s);
	free(s);
	admin_reply(req, code, "application/json", b);
	evbuffer_free(b);
}

/* Seconds since admin_new. */
static json_int_t
admin_uptime(const struct admin *a)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (json_int_t)(now.tv_sec - a->a_start.tv_sec);
}

/* GET /status: the common fields, then the daemon's summary. */
static void
admin_status(struct admin *a, struct evhttp_request *req)
{
	struct metric	*open;
	json_t		*o;

	open = metric_gauge("qroam_connections_open",
	    "Connections open now.", NULL);
	o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "daemon", a->a_daemon,
	    "id", a->a_id, "pid", (json_int_t)getpid(), "uptime_s",
	    admin_uptime(a), "connections", (json_int_t)metric_value(open, NULL));
	if (o != NULL && a->a_cb != NULL)
		o = a->a_cb(a->a_arg, NULL, o);
	admin_reply_json(req, o != NULL ? 200 : 500, o);
}

/* GET /status/<what>: a view of the daemon, 404 if it has none. */
static void
admin_view(struct admin *a, struct evhttp_request *req, const char *what)
{
	json_t	*v = NULL;
	size_t	 i, n = strlen(what);

	for (i = 0; i < n; i++)
		if (!islower((unsigned char)what[i]) && what[i] != '_')
			break;
	if (n > 0 && n <= 32 && i == n && a->a_cb != NULL)
		v = a->a_cb(a->a_arg, what, NULL);
	if (v == NULL) {
		admin_reply_json(req, 404, json_pack("{s:s}", "error",
		    "no such view"));
		return;
	}
	admin_reply_json(req, 200, v);
}

/* GET /metrics in the Prometheus text format. */
static void
admin_metrics(struct evhttp_request *req)
{
	struct evbuffer	*b;

	if ((b = evbuffer_new()) == NULL || metrics_render(b) == -1) {
		if (b != NULL)
			evbuffer_free(b);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	admin_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}

/* A request whose answer waits for the daemon's prepare. */
struct admin_wait {
	struct admin		*w_admin;
	struct evhttp_request	*w_req;		/* NULL once the client left */
	struct evhttp_connection *w_conn;
	char			 w_path[64];
};

static void	admin_route(struct admin *, struct evhttp_request *,
		    const char *path);

/* The client's connection closed before the answer. */
static void
admin_wait_gone(struct evhttp_connection *conn, void *arg)
{
	struct admin_wait	*w = arg;

	(void)conn;
	w->w_req = NULL;
}

void
admin_prepared(struct admin_wait *w)
{
	if (w->w_req != NULL) {
		evhttp_connection_set_closecb(w->w_conn, NULL, NULL);
		admin_route(w->w_admin, w->w_req, w->w_path);
	}
	free(w);
}

void
admin_set_prepare(struct admin *a, admin_prepare_cb cb, void *arg)
{
	a->a_prepare = cb;
	a->a_prepare_arg = arg;
}

/* Have the daemon prepare what path shows, then answer; 0 or -1. */
static int
admin_wait(struct admin *a, struct evhttp_request *req, const char *path)
{
	struct admin_wait	*w;
	const char		*what;

	if (strlen(path) >= sizeof(w->w_path) ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->w_admin = a;
	w->w_req = req;
	w->w_conn = evhttp_request_get_connection(req);
	memcpy(w->w_path, path, strlen(path) + 1);
	evhttp_connection_set_closecb(w->w_conn, admin_wait_gone, w);
	what = strcmp(path, "/metrics") == 0 ? "metrics" :
	    strcmp(path, "/status") == 0 ? NULL : path + 8;
	a->a_prepare(a->a_prepare_arg, what, w);
	return 0;
}

/* Every request: route on the path. */
static void
admin_request_cb(struct evhttp_request *req, void *arg)
{
	struct admin		*a = arg;
	const struct evhttp_uri	*uri;
	const char		*path;

	uri = evhttp_request_get_evhttp_uri(req);
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL)
		path = "";
	metric_inc(a->a_requests, strcmp(path, "/metrics") == 0 ? "metrics" :
	    strcmp(path, "/healthz") == 0 ? "healthz" :
	    strncmp(path, "/status", 7) == 0 ? "status" : "other");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		admin_reply_json(req, 405, json_pack("{s:s}", "error",
		    "only GET"));
		return;
	}
	if (a->a_prepare != NULL && (strcmp(path, "/metrics") == 0 ||
	    strcmp(path, "/status") == 0 || strncmp(path, "/status/", 8) == 0) &&
	    admin_wait(a, req, path) == 0)
		return;
	admin_route(a, req, path);
}

/* Answer a GET of path. */
static void
admin_route(struct admin *a, struct evhttp_request *req, const char *path)
{
	struct evbuffer		*b;

	if (strcmp(path, "/metrics") == 0)
		admin_metrics(req);
	else if (strcmp(path, "/healthz") == 0) {
		if ((b = evbuffer_new()) == NULL) {
			evhttp_send_error(req, 500, NULL);
			return;
		}
		evbuffer_add(b, "ok\n", 3);
		admin_reply(req, 200, "text/plain", b);
		evbuffer_free(b);
	} else if (strcmp(path, "/status") == 0)
		admin_status(a, req);
	else if (strncmp(path, "/status/", 8) == 0)
		admin_view(a, req, path + 8);
	else
		admin_reply_json(req, 404, json_pack("{s:s}", "error",
		    "unknown path"));
}

struct admin *
admin_new(struct event_base *base, const char *host, uint16_t port,
    const char *daemon, const char *id, admin_status_cb cb, void *arg)
{
	struct admin	*a;

	a = xcalloc(1, sizeof(*a));
	a->a_daemon = xstrdup(daemon);
	a->a_id = xstrdup(id != NULL ? id : "");
	a->a_cb = cb;
	a->a_arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &a->a_start);
	a->a_requests = metric_counter("qroam_admin_requests_total",
	    "Requests to the admin endpoint, by path.", "path");
	if (port == 0)
		return a;
	if ((a->a_http = evhttp_new(base)) == NULL)
		fatalx("evhttp_new");
	evhttp_set_timeout(a->a_http, ADMIN_TIMEOUT_S);
	evhttp_set_max_headers_size(a->a_http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(a->a_http, 0);
	evhttp_set_allowed_methods(a->a_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
	evhttp_set_gencb(a->a_http, admin_request_cb, a);
	if (evhttp_bind_socket(a->a_http, host, port) == -1) {
		log_warnx("admin: cannot listen on %s:%u", host, port);
		admin_free(a);
		return NULL;
	}
	log_info("admin endpoint on http://%s:%u/ (metrics, healthz, status)",
	    host, port);
	return a;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->a_http != NULL)
		evhttp_free(a->a_http);
	free(a->a_daemon);
	free(a->a_id);
	free(a);
}
