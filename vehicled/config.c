/*
 * vehicled configuration file.  The whole file is parsed into a fresh
 * struct and every error reported as "file:line: message" before the
 * caller takes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ids.h"
#include "keyseq.h"
#include "log.h"

#define VCONF_DEF_RETRANSMIT	30000
#define VCONF_DEF_TELEMETRY	1000
#define VCONF_DEF_SPEED		25.0
#define VCONF_DEF_CONNECT	10000
#define VCONF_DEF_PROVISION	10000
#define VCONF_DEF_FLEET_SPACING	2000
#define VCONF_DEF_UNSTORED	4096
#define VCONF_DEF_RESEND	8
#define VCONF_MAX_RESEND	1000
#define VCONF_MAX_DURATION	(7ULL * 24 * 3600 * 1000)

/* Set defaults before parsing. */
static void
vconf_init(struct vconf *vc)
{
	memset(vc, 0, sizeof(*vc));
	cfg_common_init(&vc->vc_common);
	vc->vc_draw = CHIP_SEQUENTIAL;
	vc->vc_retransmit_ms = VCONF_DEF_RETRANSMIT;
	vc->vc_telemetry_ms = VCONF_DEF_TELEMETRY;
	vc->vc_speed = VCONF_DEF_SPEED;
	vc->vc_time_factor = 1.0;
	vc->vc_connect_ms = VCONF_DEF_CONNECT;
	vc->vc_provision_ms = VCONF_DEF_PROVISION;
	vc->vc_fleet_spacing_ms = VCONF_DEF_FLEET_SPACING;
	vc->vc_entry = VCONF_ENTRY_PREPARED;
	vc->vc_unstored_max = VCONF_DEF_UNSTORED;
	vc->vc_resend_burst = VCONF_DEF_RESEND;
}

/* A duration directive with one argument in [min, VCONF_MAX_DURATION]. */
static int
vconf_duration(const struct conf_line *cl, uint64_t min, uint64_t *out)
{
	uint64_t	v;

	if (conf_duration_ms(cl->cl_argv[1], &v) == -1 || v < min ||
	    v > VCONF_MAX_DURATION) {
		conf_error(cl, "%s: bad duration \"%s\" (want e.g. 500ms, 30s,"
		    " 2m; at least %llums)", cl->cl_argv[0], cl->cl_argv[1],
		    (unsigned long long)min);
		return -1;
	}
	*out = v;
	return 0;
}

/* Append the LAT,LON waypoints of a route line. */
static int
vconf_route(struct vconf *vc, const struct conf_line *cl)
{
	struct geo_point	 p;
	char			*comma, buf[64];
	int			 i;

	if (cl->cl_argc < 2) {
		conf_error(cl, "route needs at least one LAT,LON waypoint");
		return -1;
	}
	for (i = 1; i < cl->cl_argc; i++) {
		if (vc->vc_nroute == VCONF_MAXROUTE) {
			conf_error(cl, "route has more than %d waypoints",
			    VCONF_MAXROUTE);
			return -1;
		}
		if (snprintf(buf, sizeof(buf), "%s", cl->cl_argv[i]) >=
		    (int)sizeof(buf) || (comma = strchr(buf, ',')) == NULL)
			goto bad;
		*comma = '\0';
		if (conf_double(buf, -90, 90, &p.gp_lat) == -1 ||
		    conf_double(comma + 1, -180, 180, &p.gp_lon) == -1)
			goto bad;
		if (vc->vc_route == NULL)
			vc->vc_route = xcalloc(VCONF_MAXROUTE,
			    sizeof(*vc->vc_route));
		vc->vc_route[vc->vc_nroute++] = p;
	}
	return 0;
 bad:
	conf_error(cl, "route: bad waypoint \"%s\" (want LAT,LON in degrees)",
	    cl->cl_argv[i]);
	return -1;
}

/* Replace *dst with a copy of the one argument of cl. */
static void
vconf_path(char **dst, const struct conf_line *cl)
{
	free(*dst);
	*dst = xstrdup(cl->cl_argv[1]);
}

/* The handover's directives: decline_at_end, reauth_on_entry, entry. */
static int
vconf_handover_value(struct vconf *vc, const struct conf_line *cl)
{
	const char	*d = cl->cl_argv[0], *a = cl->cl_argv[1];

	if (strcmp(d, "decline_at_end") == 0) {
		if (conf_bool(a, &vc->vc_decline_at_end) == -1) {
			conf_error(cl, "decline_at_end must be yes or no");
			return -1;
		}
	} else if (strcmp(d, "reauth_on_entry") == 0) {
		if (conf_bool(a, &vc->vc_reauth_on_entry) == -1) {
			conf_error(cl, "reauth_on_entry must be yes or no");
			return -1;
		}
	} else if (strcmp(d, "entry") == 0) {
		if (strcmp(a, "prepared") == 0)
			vc->vc_entry = VCONF_ENTRY_PREPARED;
		else if (strcmp(a, "on_crossing") == 0)
			vc->vc_entry = VCONF_ENTRY_ON_CROSSING;
		else {
			conf_error(cl, "entry must be prepared or on_crossing");
			return -1;
		}
	} else
		return 0;
	return 1;
}

/* Directives with one numeric or word argument. */
static int
vconf_value(struct vconf *vc, const struct conf_line *cl)
{
	const char	*d = cl->cl_argv[0], *a = cl->cl_argv[1];
	uint64_t	 v;

	if (strcmp(d, "draw") == 0) {
		if (strcmp(a, "sequential") == 0)
			vc->vc_draw = CHIP_SEQUENTIAL;
		else if (strcmp(a, "arbitrary") == 0)
			vc->vc_draw = CHIP_ARBITRARY;
		else {
			conf_error(cl, "draw must be sequential or arbitrary");
			return -1;
		}
	} else if (strcmp(d, "fill_m") == 0) {
		if (conf_uint(a, 2, KEYSEQ_MAXM, &v) == -1) {
			conf_error(cl, "fill_m must be 2..%d", KEYSEQ_MAXM);
			return -1;
		}
		vc->vc_fill_m = (uint32_t)v;
	} else if (strcmp(d, "session_rekey") == 0) {
		if (conf_uint(a, 0, UINT32_MAX, &v) == -1) {
			conf_error(cl, "session_rekey must be a count (0 = never)");
			return -1;
		}
		vc->vc_session_rekey = v;
	} else if (strcmp(d, "refill") == 0) {
		if (conf_bool(a, &vc->vc_refill) == -1) {
			conf_error(cl, "refill must be yes or no");
			return -1;
		}
	} else if (strcmp(d, "speed") == 0) {
		if (conf_double(a, 0, 1000, &vc->vc_speed) == -1) {
			conf_error(cl, "speed must be 0..1000 m/s");
			return -1;
		}
	} else if (strcmp(d, "unstored_max") == 0) {
		if (conf_uint(a, 1, VCONF_MAXUNSTORED, &v) == -1) {
			conf_error(cl, "unstored_max must be 1..%d records",
			    VCONF_MAXUNSTORED);
			return -1;
		}
		vc->vc_unstored_max = (uint32_t)v;
	} else if (strcmp(d, "resend_burst") == 0) {
		if (conf_uint(a, 0, VCONF_MAX_RESEND, &v) == -1) {
			conf_error(cl, "resend_burst must be 0..%d records",
			    VCONF_MAX_RESEND);
			return -1;
		}
		vc->vc_resend_burst = (uint32_t)v;
	} else if (strcmp(d, "fleet") == 0) {
		if (conf_uint(a, 1, VCONF_MAXFLEET_STORE, &v) == -1) {
			conf_error(cl, "fleet must be 1..%d vehicles (%d without"
			    " fleet_store)", VCONF_MAXFLEET_STORE, VCONF_MAXFLEET);
			return -1;
		}
		vc->vc_fleet = (uint32_t)v;
	} else if (strcmp(d, "fleet_store") == 0) {
		if (conf_bool(a, &vc->vc_fleet_store) == -1) {
			conf_error(cl, "fleet_store must be yes or no");
			return -1;
		}
	} else if (strcmp(d, "enroll_only") == 0) {
		if (conf_bool(a, &vc->vc_enroll_only) == -1) {
			conf_error(cl, "enroll_only must be yes or no");
			return -1;
		}
	} else if (strcmp(d, "fleet_rate") == 0) {
		if (conf_uint(a, 0, 1000000, &v) == -1) {
			conf_error(cl, "fleet_rate must be 0..1000000 vehicles"
			    " a second (0: all at once)");
			return -1;
		}
		vc->vc_fleet_rate = (uint32_t)v;
	} else if (strcmp(d, "time_factor") == 0) {
		if (conf_double(a, 0.001, 100000, &vc->vc_time_factor) == -1) {
			conf_error(cl, "time_factor must be 0.001..100000");
			return -1;
		}
	} else
		return 0;
	return 1;
}

/* Dispatch one line; the conf_cb of conf_parse_file. */
static int
vconf_line(void *arg, const struct conf_line *cl)
{
	struct vconf	*vc = arg;
	const char	*d = cl->cl_argv[0];
	int		 r;

	if ((r = cfg_common_line(&vc->vc_common, cl)) != 0)
		return r == -1 ? -1 : 0;
	if (strcmp(d, "route") == 0)
		return vconf_route(vc, cl);
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	if ((r = vconf_value(vc, cl)) != 0 ||
	    (r = vconf_handover_value(vc, cl)) != 0)
		return r == -1 ? -1 : 0;
	if (strcmp(d, "vehicle_id") == 0) {
		if (!id_valid_vin(cl->cl_argv[1])) {
			conf_error(cl, "invalid vehicle_id \"%s\" (want 17 chars"
			    " of [A-HJ-NPR-Z0-9])", cl->cl_argv[1]);
			return -1;
		}
		snprintf(vc->vc_vid, sizeof(vc->vc_vid), "%s", cl->cl_argv[1]);
	} else if (strcmp(d, "operator_cert") == 0)
		vconf_path(&vc->vc_operator_cert, cl);
	else if (strcmp(d, "operator_key") == 0)
		vconf_path(&vc->vc_operator_key, cl);
	else if (strcmp(d, "retransmit") == 0)
		return vconf_duration(cl, 10, &vc->vc_retransmit_ms);
	else if (strcmp(d, "telemetry_interval") == 0)
		return vconf_duration(cl, 10, &vc->vc_telemetry_ms);
	else if (strcmp(d, "trip_time") == 0)
		return vconf_duration(cl, 0, &vc->vc_trip_ms);
	else if (strcmp(d, "connect_timeout") == 0)
		return vconf_duration(cl, 100, &vc->vc_connect_ms);
	else if (strcmp(d, "provision_timeout") == 0)
		return vconf_duration(cl, 100, &vc->vc_provision_ms);
	else if (strcmp(d, "power_cycle_at") == 0)
		return vconf_duration(cl, 1, &vc->vc_power_cycle_ms);
	else if (strcmp(d, "fleet_spacing") == 0)
		return vconf_duration(cl, 0, &vc->vc_fleet_spacing_ms);
	else if (strcmp(d, "fleet_offset") == 0)
		return vconf_duration(cl, 0, &vc->vc_fleet_offset_ms);
	else {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	return 0;
}

/* Checks that need the whole file; reports "file: message". */
static int
vconf_check(struct vconf *vc, const char *path)
{
	int	errors = 0;

	if (vc->vc_vid[0] == '\0') {
		fprintf(stderr, "%s: missing \"vehicle_id\"\n", path);
		errors++;
	}
	if ((vc->vc_operator_cert == NULL) != (vc->vc_operator_key == NULL)) {
		fprintf(stderr, "%s: \"operator_cert\" and \"operator_key\" go"
		    " together\n", path);
		errors++;
	}
	if (vc->vc_operator_cert != NULL && vc->vc_common.cc_ca == NULL) {
		fprintf(stderr, "%s: the operator credential needs \"ca\"\n",
		    path);
		errors++;
	}
	if ((vc->vc_common.cc_cert == NULL) != (vc->vc_common.cc_key == NULL)) {
		fprintf(stderr, "%s: \"cert\" and \"key\" go together\n", path);
		errors++;
	}
	if (vc->vc_fleet > VCONF_MAXFLEET && !vc->vc_fleet_store) {
		fprintf(stderr, "%s: a fleet of more than %d vehicles needs"
		    " \"fleet_store\"\n", path, VCONF_MAXFLEET);
		errors++;
	}
	if (vc->vc_fleet_store && vc->vc_fleet == 0) {
		fprintf(stderr, "%s: \"fleet_store\" needs \"fleet\"\n", path);
		errors++;
	}
	if (cfg_common_check(&vc->vc_common, path, 0) == -1)
		errors++;
	if (errors == 0 && vc->vc_common.cc_id[0] == '\0')
		snprintf(vc->vc_common.cc_id, sizeof(vc->vc_common.cc_id), "%s",
		    vc->vc_vid);
	return errors ? -1 : 0;
}

int
vconf_load(const char *path, struct vconf *out)
{
	struct vconf	vc;
	int		errors;

	vconf_init(&vc);
	errors = conf_parse_file(path, vconf_line, &vc);
	/* An unreadable file is the one error, not every directive in it. */
	if ((errors == 0 || access(path, R_OK) == 0) &&
	    vconf_check(&vc, path) == -1)
		errors++;
	if (errors) {
		vconf_free(&vc);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	*out = vc;
	return 0;
}

void
vconf_free(struct vconf *vc)
{
	cfg_common_free(&vc->vc_common);
	free(vc->vc_operator_cert);
	free(vc->vc_operator_key);
	free(vc->vc_route);
	memset(vc, 0, sizeof(*vc));
}

void
vconf_take_runtime(struct vconf *dst, const struct vconf *src)
{
	dst->vc_telemetry_ms = src->vc_telemetry_ms;
	dst->vc_retransmit_ms = src->vc_retransmit_ms;
	dst->vc_session_rekey = src->vc_session_rekey;
	dst->vc_refill = src->vc_refill;
	dst->vc_decline_at_end = src->vc_decline_at_end;
	dst->vc_reauth_on_entry = src->vc_reauth_on_entry;
	dst->vc_entry = src->vc_entry;
	dst->vc_resend_burst = src->vc_resend_burst;
	dst->vc_connect_ms = src->vc_connect_ms;
	dst->vc_provision_ms = src->vc_provision_ms;
}
