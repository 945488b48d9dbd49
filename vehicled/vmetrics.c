/*
 * The vehicles' metrics.  Each is created on first use, so the protocol
 * code that counts them needs no set-up; vmetrics_init() creates them all
 * in the order of the exposition.
 */
#include <stddef.h>

#include "metrics.h"
#include "vmetrics.h"

static const double vmetrics_gap_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5, 10, 30
};

static struct metric *
vmetrics_sent(void)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_counter("qroam_telemetry_sent_total",
		    "Telemetry messages sent to a TSP.", NULL);
	return m;
}

static struct metric *
vmetrics_acked(void)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_counter("qroam_telemetry_acked_total",
		    "Telemetry messages acknowledged by a TSP.", NULL);
	return m;
}

/* A counter of telemetry records, created on first use. */
static struct metric *
vmetrics_records(struct metric **m, const char *name, const char *help)
{
	if (*m == NULL)
		*m = metric_counter(name, help, NULL);
	return *m;
}

static struct metric *
vmetrics_resent(void)
{
	static struct metric	*m;

	return vmetrics_records(&m, "qroam_telemetry_resent_total",
	    "Telemetry records sent again (same record id) in a later session.");
}

static struct metric *
vmetrics_stored(void)
{
	static struct metric	*m;

	return vmetrics_records(&m, "qroam_telemetry_stored_total",
	    "Telemetry records a TSP reported durably stored (stored_seq, or "
	    "the answer to the M3 carrying them).");
}

static struct metric *
vmetrics_dropped(void)
{
	static struct metric	*m;

	return vmetrics_records(&m, "qroam_telemetry_dropped_total",
	    "Telemetry records dropped unstored: the queue was full "
	    "(unstored_max).");
}

static struct metric *
vmetrics_unstored_gauge(void)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_gauge("qroam_telemetry_unstored",
		    "Telemetry records held until a TSP reports them stored.",
		    NULL);
	return m;
}

static struct metric *
vmetrics_gaps(void)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_histogram("qroam_handover_gap_seconds",
		    "Region crossings: from the detection of the crossing to "
		    "the new TSP's first ServiceResponse to a message sent "
		    "since (the service gap).", vmetrics_gap_bounds,
		    sizeof(vmetrics_gap_bounds) / sizeof(vmetrics_gap_bounds[0]));
	return m;
}

static struct metric *
vmetrics_keys(void)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_gauge("qroam_chip_keys_left",
		    "Unused keys on the chips of this process.", NULL);
	return m;
}

void
vmetrics_init(void)
{
	(void)vmetrics_sent();
	(void)vmetrics_acked();
	(void)vmetrics_resent();
	(void)vmetrics_stored();
	(void)vmetrics_dropped();
	(void)vmetrics_unstored_gauge();
	(void)vmetrics_gaps();
	(void)vmetrics_keys();
}

void
vmetrics_telemetry_sent(void)
{
	metric_inc(vmetrics_sent(), NULL);
}

void
vmetrics_telemetry_acked(void)
{
	metric_inc(vmetrics_acked(), NULL);
}

void
vmetrics_telemetry_resent(void)
{
	metric_inc(vmetrics_resent(), NULL);
}

void
vmetrics_telemetry_stored(size_t n)
{
	metric_add(vmetrics_stored(), NULL, (double)n);
}

void
vmetrics_telemetry_dropped(void)
{
	metric_inc(vmetrics_dropped(), NULL);
}

void
vmetrics_unstored(double n)
{
	metric_set(vmetrics_unstored_gauge(), NULL, n);
}

void
vmetrics_gap(double ms)
{
	metric_observe(vmetrics_gaps(), ms / 1000.0);
}

void
vmetrics_keys_left(double n)
{
	metric_set(vmetrics_keys(), NULL, n);
}
