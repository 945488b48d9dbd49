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

static struct metric *
vmetrics_gaps(void)
{
	static struct metric	*m;

	if (m == NULL)
		m = metric_histogram("qroam_handover_gap_seconds",
		    "Region crossings: from the detection of the crossing to "
		    "the first reply of the new TSP.", vmetrics_gap_bounds,
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
vmetrics_gap(double ms)
{
	metric_observe(vmetrics_gaps(), ms / 1000.0);
}

void
vmetrics_keys_left(double n)
{
	metric_set(vmetrics_keys(), NULL, n);
}
