/*
 * Process-wide Prometheus metrics: counters, gauges and histograms with at
 * most one label, kept in one registry per process (the daemons are single
 * threaded) and rendered in the Prometheus text exposition format by the
 * admin endpoint.  Names follow the Prometheus conventions (qroam_..._total
 * for counters, base units: seconds).
 *
 * Every process counts, through the I/O layer: connections accepted and
 * open, messages received and sent by type, and refusals by reason (every
 * non-OK Status sent, framing violations, refused TLS handshakes); daemons
 * add their own (handover latency, outbox depth, key pool levels).
 */
#ifndef QROAM_METRICS_H
#define QROAM_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct metric;

/*
 * Find or create a metric.  label is the name of its one label, or NULL for
 * a metric without labels.  Asking again for the same name returns the same
 * metric (type and label must agree).  Never fails: the registry is sized
 * at compile time and a program that asks for too many metrics aborts.
 */
struct metric *metric_counter(const char *name, const char *help,
	    const char *label);
struct metric *metric_gauge(const char *name, const char *help,
	    const char *label);
/* bounds: upper bounds of the buckets, increasing; +Inf is implicit. */
struct metric *metric_histogram(const char *name, const char *help,
	    const double *bounds, size_t nbounds);

/* label_value is ignored (may be NULL) for metrics without a label. */
void	metric_inc(struct metric *, const char *label_value);
void	metric_add(struct metric *, const char *label_value, double);
void	metric_set(struct metric *, const char *label_value, double);
void	metric_observe(struct metric *, double);
/* Current value of one series (0 if it does not exist): tests and status. */
double	metric_value(struct metric *, const char *label_value);

/*
 * Gauges that are cheaper to compute when scraped (queue depths, pool
 * levels): cb is called before every rendering and sets them with
 * metric_set().  metrics_collector_remove() before arg goes away.
 */
typedef void (*metrics_collect_cb)(void *arg);
void	metrics_collector_add(metrics_collect_cb, void *arg);
void	metrics_collector_remove(metrics_collect_cb, void *arg);

/* Append the exposition text of every metric to buf; 0 or -1 (no memory). */
int	metrics_render(struct evbuffer *buf);

/* Count one refusal: qroam_refusals_total{reason=...}. */
void	metrics_refusal(const char *reason);

/*
 * Zero every metric and forget the collectors (unit tests).  Metrics stay
 * registered, so pointers callers keep remain valid for the process.
 */
void	metrics_reset(void);

/* Default buckets of latency histograms, in seconds (1 ms .. 10 s). */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_nbounds;

#endif
