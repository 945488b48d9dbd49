/*
 * The vehicles' metrics: telemetry sent, acknowledged, sent again, stored
 * and dropped unstored, the gap of each crossing and the chip keys left,
 * counted by the protocol steps and the handover and exposed by the admin
 * endpoint (ops.c).
 */
#ifndef VEHICLED_VMETRICS_H
#define VEHICLED_VMETRICS_H

#include <stddef.h>

/* Create every metric now, so a scrape lists them before the first event. */
void	vmetrics_init(void);

void	vmetrics_telemetry_sent(void);
void	vmetrics_telemetry_acked(void);
void	vmetrics_telemetry_resent(void);
/* n records were reported stored. */
void	vmetrics_telemetry_stored(size_t n);
void	vmetrics_telemetry_dropped(void);
/* Records held unstored by the vehicles of this process, at scrape time. */
void	vmetrics_unstored(double n);
/* A crossing was served ms after its detection. */
void	vmetrics_gap(double ms);
/* Unused keys on the chips of this process, set at scrape time. */
void	vmetrics_keys_left(double n);

#endif
