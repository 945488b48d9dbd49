/*
 * The HTTP client of qroamctl on libevent's evhttp: GETs of the daemons'
 * admin endpoints (plain HTTP on loopback) and the HTTPS requests of the
 * operator actions (mutual TLS, a bufferevent_openssl handed to evhttp as
 * common/keysrc_etsi014.c does).  A batch of requests runs at once, one
 * connection each, every one bounded by the -w timeout, so a daemon that
 * does not answer delays the others by at most that long.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "httpc.h"
#include "tls.h"

#include "ctl.h"

#define CTL_BODY_MAX	(32 * 1024 * 1024)
#define CTL_HEADERS_MAX	16384

void
ctl_fetch_init(struct ctl_fetch *cf, const struct ctl_daemon *d,
    const char *path)
{
	memset(cf, 0, sizeof(*cf));
	cf->cf_daemon = d;
	cf->cf_host = d->cd_host;
	cf->cf_port = d->cd_port;
	snprintf(cf->cf_path, sizeof(cf->cf_path), "%s", path);
	cf->cf_method = CTL_GET;
}

/* Why a request got no answer, into cf_err. */
static void
ctl_failure_text(struct ctl_fetch *cf)
{
	if (httpc_failure_text(cf->cf_tls != NULL ? cf->cf_conn : NULL,
	    cf->cf_httperr, cf->cf_err, sizeof(cf->cf_err)) == 0 &&
	    cf->cf_httperr == EVREQ_HTTP_TIMEOUT)
		snprintf(cf->cf_err, sizeof(cf->cf_err),
		    "no answer within %d ms", cf->cf_wait_ms);
}

/* evhttp's error callback: remember why; the request callback follows. */
static void
ctl_http_error(enum evhttp_request_error err, void *arg)
{
	struct ctl_fetch	*cf = arg;

	cf->cf_httperr = (int)err;
}

/*
 * The server's certificate must carry the expected role; checked when the
 * headers arrive, while the TLS session is still open.  -1 cancels the
 * request.
 */
static int
ctl_http_headers(struct evhttp_request *r, void *arg)
{
	struct ctl_fetch	*cf = arg;
	struct bufferevent	*bev;
	SSL			*ssl;
	char			 cn[128], role[64];

	(void)r;
	if (cf->cf_tls == NULL || cf->cf_peer_role == NULL)
		return 0;
	bev = evhttp_connection_get_bufferevent(cf->cf_conn);
	if (bev == NULL || (ssl = bufferevent_openssl_get_ssl(bev)) == NULL ||
	    tls_peer_identity(ssl, cn, sizeof(cn), role, sizeof(role)) == -1) {
		snprintf(cf->cf_err, sizeof(cf->cf_err),
		    "no verified server certificate");
		cf->cf_badpeer = 1;
		return -1;
	}
	if (strcmp(role, cf->cf_peer_role) != 0) {
		snprintf(cf->cf_err, sizeof(cf->cf_err), "the server %s has "
		    "role %s, not %s", cn, role, cf->cf_peer_role);
		cf->cf_badpeer = 1;
		return -1;
	}
	return 0;
}

/* evhttp's request callback: an answer, or NULL / code 0 on failure. */
static void
ctl_http_done(struct evhttp_request *r, void *arg)
{
	struct ctl_fetch	*cf = arg;
	struct evbuffer		*in;
	size_t			 n;

	if (!cf->cf_pending)
		return;
	cf->cf_pending = 0;
	if (--*cf->cf_left == 0)
		event_base_loopbreak(evhttp_connection_get_base(cf->cf_conn));
	if (r != NULL)
		cf->cf_code = evhttp_request_get_response_code(r);
	if (cf->cf_badpeer)
		cf->cf_code = 0;
	else if (cf->cf_code == 0)
		ctl_failure_text(cf);
	if (cf->cf_code == 0)
		return;
	in = evhttp_request_get_input_buffer(r);
	n = evbuffer_get_length(in);
	if ((cf->cf_data = malloc(n + 1)) == NULL) {
		cf->cf_code = 0;
		snprintf(cf->cf_err, sizeof(cf->cf_err), "out of memory");
		return;
	}
	evbuffer_remove(in, cf->cf_data, n);
	cf->cf_data[n] = '\0';
	cf->cf_len = n;
}

/* Start cf on its own connection; 0, or -1 with cf_err set. */
static int
ctl_start(struct ctl *c, struct ctl_fetch *cf, int *left)
{
	struct evhttp_request	*r;
	struct evkeyvalq	*h;
	struct timeval		 tv;
	char			 hostport[300];

	if ((cf->cf_conn = httpc_connect(c->c_base, cf->cf_tls, cf->cf_host,
	    cf->cf_port)) == NULL) {
		snprintf(cf->cf_err, sizeof(cf->cf_err), "cannot connect");
		return -1;
	}
	evhttp_connection_set_retries(cf->cf_conn, 0);
	evhttp_connection_set_max_body_size(cf->cf_conn, CTL_BODY_MAX);
	evhttp_connection_set_max_headers_size(cf->cf_conn, CTL_HEADERS_MAX);
	tv.tv_sec = c->c_wait_ms / 1000;
	tv.tv_usec = (c->c_wait_ms % 1000) * 1000;
	evhttp_connection_set_timeout_tv(cf->cf_conn, &tv);
	if ((r = evhttp_request_new(ctl_http_done, cf)) == NULL) {
		snprintf(cf->cf_err, sizeof(cf->cf_err), "out of memory");
		return -1;
	}
	evhttp_request_set_error_cb(r, ctl_http_error);
	evhttp_request_set_header_cb(r, ctl_http_headers);
	h = evhttp_request_get_output_headers(r);
	snprintf(hostport, sizeof(hostport), strchr(cf->cf_host, ':') ?
	    "[%s]:%u" : "%s:%u", cf->cf_host, cf->cf_port);
	evhttp_add_header(h, "Host", hostport);
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "Accept", "application/json, text/plain");
	if (cf->cf_method == CTL_POST) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(r), cf->cf_body,
		    strlen(cf->cf_body));
	}
	cf->cf_left = left;
	cf->cf_pending = 1;
	cf->cf_httperr = -1;
	cf->cf_wait_ms = c->c_wait_ms;
	if (evhttp_make_request(cf->cf_conn, r, cf->cf_method == CTL_POST ?
	    EVHTTP_REQ_POST : EVHTTP_REQ_GET, cf->cf_path) == -1) {
		cf->cf_pending = 0;
		snprintf(cf->cf_err, sizeof(cf->cf_err), "cannot send");
		return -1;
	}
	return 0;
}

/* The last bound of a batch: stop waiting for what is still pending. */
static void
ctl_guard(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	event_base_loopbreak(arg);
}

int
ctl_fetch_run(struct ctl *c, struct ctl_fetch *cfs, size_t n)
{
	struct timeval	 tv;
	struct event	*guard;
	size_t		 i;
	int		 left = 0;

	if ((guard = evtimer_new(c->c_base, ctl_guard, c->c_base)) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (ctl_start(c, &cfs[i], &left) == 0)
			left++;
	if (left > 0) {
		tv.tv_sec = (c->c_wait_ms * 2 + 1000) / 1000;
		tv.tv_usec = 0;
		evtimer_add(guard, &tv);
		event_base_dispatch(c->c_base);
	}
	event_free(guard);
	for (i = 0; i < n; i++) {
		if (cfs[i].cf_pending) {
			cfs[i].cf_pending = 0;
			snprintf(cfs[i].cf_err, sizeof(cfs[i].cf_err),
			    "no answer within %d ms", c->c_wait_ms);
		}
		if (cfs[i].cf_conn != NULL) {
			if (cfs[i].cf_tls != NULL)
				httpc_close_notify(cfs[i].cf_conn);
			evhttp_connection_free(cfs[i].cf_conn);
			cfs[i].cf_conn = NULL;
		}
	}
	/* Let deferred callbacks of the freed connections run out. */
	event_base_loop(c->c_base, EVLOOP_NONBLOCK);
	return 0;
}

json_t *
ctl_fetch_json(const struct ctl_fetch *cf, char *why, size_t len)
{
	json_error_t	 je;
	json_t		*j;

	if (cf->cf_code == 0) {
		snprintf(why, len, "%s", cf->cf_err);
		return NULL;
	}
	if (cf->cf_code != 200) {
		snprintf(why, len, "HTTP %d for %s", cf->cf_code, cf->cf_path);
		return NULL;
	}
	if ((j = json_loadb(cf->cf_data, cf->cf_len, 0, &je)) == NULL)
		snprintf(why, len, "%s: not JSON (%s)", cf->cf_path, je.text);
	return j;
}

void
ctl_fetch_clear(struct ctl_fetch *cfs, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(cfs[i].cf_data);
		cfs[i].cf_data = NULL;
	}
}
