/*
 * The admin endpoint of a daemon: plain HTTP/1.1 (libevent's evhttp) on the
 * address of the `admin` directive, loopback unless configured otherwise.
 * Read-only:
 *   GET /metrics          Prometheus text format (metrics.h)
 *   GET /healthz          "ok" once the daemon serves
 *   GET /status           JSON object: daemon, id, pid, uptime_s,
 *                         connections, plus the daemon's own summary
 *   GET /status/<what>    JSON from the daemon (lists: sessions, vehicles,
 *                         handovers, outbox, pools, ...); 404 if unknown
 * Operator actions never come through here: they use the daemons' mutual
 * TLS interfaces with an operator certificate.
 */
#ifndef QROAM_ADMIN_H
#define QROAM_ADMIN_H

#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>

struct admin;

/*
 * The daemon's part of /status: with what == NULL, add the summary fields
 * to obj and return obj; else return a new JSON value for /status/<what>,
 * or NULL if the daemon has no such view (404).  Values must never hold
 * key material.
 */
typedef json_t *(*admin_status_cb)(void *arg, const char *what, json_t *obj);

/*
 * Listen on host:port (port 0: no admin endpoint, returns a valid handle
 * that does nothing).  daemon is the program name, id its identity.  A
 * failure to bind is returned as NULL after a log line.
 */
struct admin *admin_new(struct event_base *, const char *host, uint16_t port,
	    const char *daemon, const char *id, admin_status_cb, void *arg);
void	admin_free(struct admin *);

/*
 * A daemon whose /metrics and /status read a store that answers later:
 * before answering GET /metrics (what "metrics"), /status (what NULL) or
 * /status/<what>, the endpoint calls prepare(arg, what, w); the daemon
 * gathers what the view shows and calls admin_prepared(w), and the
 * endpoint then answers through the status callback and the metrics'
 * collectors as usual.  A client gone meanwhile gets nothing.
 */
struct admin_wait;
typedef void (*admin_prepare_cb)(void *arg, const char *what,
	    struct admin_wait *w);
void	admin_set_prepare(struct admin *, admin_prepare_cb, void *arg);
void	admin_prepared(struct admin_wait *);

#endif
