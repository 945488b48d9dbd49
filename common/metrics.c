/*
 * Process-wide Prometheus metrics registry and its text exposition
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"

#define METRICS_MAX	128	/* metrics per process */
#define SERIES_MAX	64	/* label values per metric; more go to "other" */
#define COLLECTORS_MAX	16

enum metric_kind {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM
};

struct series {
	char		*s_label;
	double		 s_value;
};

struct metric {
	char		*m_name;
	char		*m_help;
	char		*m_label;	/* label name or NULL */
	enum metric_kind m_kind;
	struct series	*m_series;
	size_t		 m_nseries;
	double		*m_bounds;	/* histogram */
	uint64_t	*m_buckets;	/* m_nbounds + 1, not cumulative */
	size_t		 m_nbounds;
	double		 m_sum;
	uint64_t	 m_count;
};

struct collector {
	metrics_collect_cb	 c_cb;
	void			*c_arg;
};

static struct metric	*registry[METRICS_MAX];
static size_t		 nmetrics;
static struct collector	 collectors[COLLECTORS_MAX];
static size_t		 ncollectors;

const double	 metrics_latency_bounds[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
const size_t	 metrics_latency_nbounds =
    sizeof(metrics_latency_bounds) / sizeof(metrics_latency_bounds[0]);

/* The metric called name, created with kind, help and label if new. */
static struct metric *
metric_get(const char *name, const char *help, const char *label,
    enum metric_kind kind)
{
	struct metric	*m;
	size_t		 i;

	for (i = 0; i < nmetrics; i++) {
		m = registry[i];
		if (strcmp(m->m_name, name) != 0)
			continue;
		if (m->m_kind != kind || (m->m_label == NULL) != (label == NULL))
			fatalx("metric %s registered twice differently", name);
		return m;
	}
	if (nmetrics == METRICS_MAX)
		fatalx("too many metrics");
	m = xcalloc(1, sizeof(*m));
	m->m_name = xstrdup(name);
	m->m_help = xstrdup(help);
	m->m_label = label != NULL ? xstrdup(label) : NULL;
	m->m_kind = kind;
	m->m_series = xcalloc(SERIES_MAX, sizeof(*m->m_series));
	if (label == NULL) {
		m->m_series[0].s_label = xstrdup("");
		m->m_nseries = 1;
	}
	registry[nmetrics++] = m;
	return m;
}

struct metric *
metric_counter(const char *name, const char *help, const char *label)
{
	return metric_get(name, help, label, METRIC_COUNTER);
}

struct metric *
metric_gauge(const char *name, const char *help, const char *label)
{
	return metric_get(name, help, label, METRIC_GAUGE);
}

struct metric *
metric_histogram(const char *name, const char *help, const double *bounds,
    size_t nbounds)
{
	struct metric	*m;
	size_t		 i;

	m = metric_get(name, help, NULL, METRIC_HISTOGRAM);
	if (m->m_bounds != NULL)
		return m;
	for (i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			fatalx("metric %s: bucket bounds not increasing", name);
	m->m_bounds = xcalloc(nbounds, sizeof(*m->m_bounds));
	memcpy(m->m_bounds, bounds, nbounds * sizeof(*bounds));
	m->m_nbounds = nbounds;
	m->m_buckets = xcalloc(nbounds + 1, sizeof(*m->m_buckets));
	return m;
}

/*
 * The series of m for label value v, created if new; once a metric has
 * SERIES_MAX series, new values share one series labelled "other" so a
 * peer cannot grow the registry.
 */
static struct series *
metric_series(struct metric *m, const char *v)
{
	size_t	i;

	if (m->m_label == NULL)
		return &m->m_series[0];
	if (v == NULL)
		v = "";
	for (i = 0; i < m->m_nseries; i++)
		if (strcmp(m->m_series[i].s_label, v) == 0)
			return &m->m_series[i];
	if (m->m_nseries >= SERIES_MAX - 1) {
		v = "other";
		for (i = 0; i < m->m_nseries; i++)
			if (strcmp(m->m_series[i].s_label, v) == 0)
				return &m->m_series[i];
	}
	m->m_series[m->m_nseries].s_label = xstrdup(v);
	m->m_series[m->m_nseries].s_value = 0;
	return &m->m_series[m->m_nseries++];
}

void
metric_inc(struct metric *m, const char *v)
{
	metric_add(m, v, 1);
}

void
metric_add(struct metric *m, const char *v, double d)
{
	metric_series(m, v)->s_value += d;
}

void
metric_set(struct metric *m, const char *v, double d)
{
	metric_series(m, v)->s_value = d;
}

void
metric_observe(struct metric *m, double d)
{
	size_t	i;

	if (m->m_kind != METRIC_HISTOGRAM || isnan(d))
		return;
	for (i = 0; i < m->m_nbounds && d > m->m_bounds[i]; i++)
		;
	m->m_buckets[i]++;
	m->m_sum += d;
	m->m_count++;
}

double
metric_value(struct metric *m, const char *v)
{
	size_t	i;

	if (m->m_kind == METRIC_HISTOGRAM)
		return (double)m->m_count;
	if (m->m_label == NULL)
		return m->m_series[0].s_value;
	for (i = 0; i < m->m_nseries; i++)
		if (strcmp(m->m_series[i].s_label, v != NULL ? v : "") == 0)
			return m->m_series[i].s_value;
	return 0;
}

void
metrics_collector_add(metrics_collect_cb cb, void *arg)
{
	if (ncollectors == COLLECTORS_MAX)
		fatalx("too many metrics collectors");
	collectors[ncollectors].c_cb = cb;
	collectors[ncollectors].c_arg = arg;
	ncollectors++;
}

void
metrics_collector_remove(metrics_collect_cb cb, void *arg)
{
	size_t	i;

	for (i = 0; i < ncollectors; i++) {
		if (collectors[i].c_cb != cb || collectors[i].c_arg != arg)
			continue;
		memmove(&collectors[i], &collectors[i + 1],
		    (ncollectors - i - 1) * sizeof(collectors[0]));
		ncollectors--;
		return;
	}
}

void
metrics_refusal(const char *reason)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_counter("qroam_refusals_total",
		    "Requests refused or dropped, by reason.", "reason");
	metric_inc(m, reason);
}

/* A label value with backslash, double quote and newline escaped. */
static int
render_label(struct evbuffer *b, const char *name, const char *v)
{
	if (evbuffer_add_printf(b, "{%s=\"", name) == -1)
		return -1;
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
	return evbuffer_add(b, "\"}", 2);
}

/* The bucket, sum and count lines of a histogram. */
static int
render_histogram(struct evbuffer *b, const struct metric *m)
{
	uint64_t	cum = 0;
	size_t		i;

	for (i = 0; i < m->m_nbounds; i++) {
		cum += m->m_buckets[i];
		if (evbuffer_add_printf(b, "%s_bucket{le=\"%.17g\"} %llu\n",
		    m->m_name, m->m_bounds[i], (unsigned long long)cum) == -1)
			return -1;
	}
	cum += m->m_buckets[m->m_nbounds];
	if (evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n"
	    "%s_sum %.17g\n%s_count %llu\n", m->m_name,
	    (unsigned long long)cum, m->m_name, m->m_sum, m->m_name,
	    (unsigned long long)m->m_count) == -1)
		return -1;
	return 0;
}

/* HELP, TYPE and the samples of one metric. */
static int
render_metric(struct evbuffer *b, const struct metric *m)
{
	static const char	*types[] = { "counter", "gauge", "histogram" };
	size_t			 i;

	if (evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m->m_name,
	    m->m_help, m->m_name, types[m->m_kind]) == -1)
		return -1;
	if (m->m_kind == METRIC_HISTOGRAM)
		return render_histogram(b, m);
	for (i = 0; i < m->m_nseries; i++) {
		if (evbuffer_add_printf(b, "%s", m->m_name) == -1)
			return -1;
		if (m->m_label != NULL &&
		    render_label(b, m->m_label, m->m_series[i].s_label) == -1)
			return -1;
		if (evbuffer_add_printf(b, " %.17g\n",
		    m->m_series[i].s_value) == -1)
			return -1;
	}
	return 0;
}

int
metrics_render(struct evbuffer *b)
{
	size_t	i;

	for (i = 0; i < ncollectors; i++)
		collectors[i].c_cb(collectors[i].c_arg);
	for (i = 0; i < nmetrics; i++)
		if (render_metric(b, registry[i]) == -1)
			return -1;
	return 0;
}

void
metrics_reset(void)
{
	struct metric	*m;
	size_t		 i, j;

	for (i = 0; i < nmetrics; i++) {
		m = registry[i];
		for (j = 0; j < m->m_nseries; j++)
			m->m_series[j].s_value = 0;
		if (m->m_buckets != NULL)
			memset(m->m_buckets, 0,
			    (m->m_nbounds + 1) * sizeof(*m->m_buckets));
		m->m_sum = 0;
		m->m_count = 0;
	}
	ncollectors = 0;
}
