/*
 * The handovers this TSP ended as source, kept in memory for the live map
 * (/status/handovers_ended): the last TSPD_HORING of them, with their
 * target, result, reason and duration.  A ring of fixed size: nothing
 * grows with the traffic, and a restart forgets it (the store keeps the
 * failures, handovers.state).  No key material is recorded.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"

#include "tspd.h"

#define TSPD_HORING	256

struct horing_entry {
	char		he_id[TSPD_HO_IDLEN + 1];
	char		he_vid[VIN_LEN + 1];
	char		he_to[33];
	char		he_reason[96];	/* "": done */
	uint64_t	he_started_ms;
	uint64_t	he_ended_ms;
};

static struct {
	struct horing_entry	r_ent[TSPD_HORING];
	size_t			r_next;		/* slot of the next entry */
	uint64_t		r_total;	/* entries ever added */
} horing;

void
tspd_horing_add(const char *hid, const char *vid, const char *to,
    const char *reason, uint64_t started_ms)
{
	struct horing_entry	*e = &horing.r_ent[horing.r_next];

	snprintf(e->he_id, sizeof(e->he_id), "%s", hid);
	snprintf(e->he_vid, sizeof(e->he_vid), "%s", vid != NULL ? vid : "");
	snprintf(e->he_to, sizeof(e->he_to), "%s", to);
	snprintf(e->he_reason, sizeof(e->he_reason), "%s",
	    reason != NULL ? reason : "");
	e->he_started_ms = started_ms;
	e->he_ended_ms = store_now_ms();
	horing.r_next = (horing.r_next + 1) % TSPD_HORING;
	horing.r_total++;
}

/* One entry as JSON. */
static json_t *
horing_json(const struct horing_entry *e)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I}",
	    "handover_id", e->he_id,
	    "vehicle_id", e->he_vid,
	    "peer", e->he_to,
	    "result", e->he_reason[0] != '\0' ? "failed" : "done",
	    "reason", e->he_reason[0] != '\0' ? json_string(e->he_reason) :
	    json_null(),
	    "started_ms", (json_int_t)e->he_started_ms,
	    "ended_ms", (json_int_t)e->he_ended_ms);
}

json_t *
tspd_horing_json(void)
{
	json_t	*a;
	size_t	 n, i, at;

	if ((a = json_array()) == NULL)
		return NULL;
	n = horing.r_total < TSPD_HORING ? (size_t)horing.r_total :
	    TSPD_HORING;
	for (i = 0; i < n; i++) {
		at = (horing.r_next + TSPD_HORING - n + i) % TSPD_HORING;
		json_array_append_new(a, horing_json(&horing.r_ent[at]));
	}
	return a;
}
