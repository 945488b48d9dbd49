/*
 * The read-only views of qroamctl, from the daemons' admin endpoints:
 * status (the /status summary of every daemon, up or down), sessions and
 * vehicles of one TSP, handovers in flight at the TSPs and the scheduler,
 * outbox backlogs and QKD key pools.  Each prints a table, or with --json
 * the JSON the daemons answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "ctl.h"

enum ctl_kind {
	CTL_TEXT,		/* the value as it is */
	CTL_SHORT,		/* a long identifier, first 16 characters */
	CTL_AGE,		/* unix ms, shown as the time since then */
};

struct ctl_col {
	const char	*cc_head;
	const char	*cc_key;
	enum ctl_kind	 cc_kind;
};

#define CTL_SHORTLEN	16

static const struct ctl_col ctl_session_cols[] = {
	{ "VEHICLE", "vehicle_id", CTL_TEXT },
	{ "CHIP", "chip_id", CTL_SHORT },
	{ "KEY", "key_index", CTL_TEXT },
	{ "RX_SEQ", "rx_seq", CTL_TEXT },
	{ "TX_SEQ", "tx_seq", CTL_TEXT },
	{ "AGE", "opened_ms", CTL_AGE },
	{ NULL, NULL, CTL_TEXT },
};

static const struct ctl_col ctl_vehicle_cols[] = {
	{ "VEHICLE", "vehicle_id", CTL_TEXT },
	{ "CHIP", "chip_id", CTL_SHORT },
	{ "EPOCH", "epoch", CTL_TEXT },
	{ "NEXT_KEY", "next_index", CTL_TEXT },
	{ "AUTH", "authenticated", CTL_TEXT },
	{ "VIA", "via", CTL_TEXT },
	{ "SESSION", "session", CTL_TEXT },
	{ NULL, NULL, CTL_TEXT },
};

static const struct ctl_col ctl_handover_cols[] = {
	{ "NAME", "name", CTL_TEXT },
	{ "HANDOVER", "handover_id", CTL_TEXT },
	{ "VEHICLE", "vehicle_id", CTL_TEXT },
	{ "ROLE", "role", CTL_TEXT },
	{ "FROM", "from", CTL_TEXT },
	{ "TO", "to", CTL_TEXT },
	{ "STATE", "state", CTL_TEXT },
	{ "AGE", "started_ms", CTL_AGE },
	{ NULL, NULL, CTL_TEXT },
};

static const struct ctl_col ctl_pool_cols[] = {
	{ "NAME", "name", CTL_TEXT },
	{ "LINK", "link", CTL_TEXT },
	{ "KEYS", "keys", CTL_TEXT },
	{ "CAPACITY", "capacity", CTL_TEXT },
	{ "BITS", "key_bits", CTL_TEXT },
	{ "EAVESDROPPER", "eavesdropper", CTL_TEXT },
	{ "QBER", "qber", CTL_TEXT },
	{ "BOUND", "qber_bound", CTL_TEXT },
	{ "STATE", "state", CTL_TEXT },
	{ NULL, NULL, CTL_TEXT },
};

static const struct ctl_col ctl_outbox_cols[] = {
	{ "NAME", "name", CTL_TEXT },
	{ "DAEMON", "daemon", CTL_TEXT },
	{ "ID", "id", CTL_TEXT },
	{ "OUTBOX", "outbox", CTL_TEXT },
	{ "PER_TSP", "per_tsp", CTL_TEXT },
	{ NULL, NULL, CTL_TEXT },
};

/* Print the objects of arr as a table of cols. */
static void
ctl_print_rows(const struct ctl_col *cols, const json_t *arr)
{
	struct ctl_table	*t;
	const char		*head[CTL_NAMEMAX], *cell[CTL_NAMEMAX];
	char			 buf[CTL_NAMEMAX][128];
	const json_t		*o;
	size_t			 i, k, n;

	for (n = 0; cols[n].cc_head != NULL; n++)
		head[n] = cols[n].cc_head;
	head[n] = NULL;
	t = ctl_table_new(head);
	json_array_foreach(arr, i, o) {
		for (k = 0; k < n; k++) {
			if (cols[k].cc_kind == CTL_AGE)
				cell[k] = ctl_age(o, cols[k].cc_key, buf[k],
				    sizeof(buf[k]));
			else
				cell[k] = ctl_cell(o, cols[k].cc_key, buf[k],
				    sizeof(buf[k]));
			if (cols[k].cc_kind == CTL_SHORT &&
			    strlen(buf[k]) > CTL_SHORTLEN)
				buf[k][CTL_SHORTLEN] = '\0';
		}
		ctl_table_row(t, cell);
	}
	ctl_table_print(t);
	ctl_table_free(t);
}

/* GET path of every daemon of ds at once; the caller clears and frees. */
static struct ctl_fetch *
ctl_fetch_each(struct ctl *c, const struct ctl_daemon **ds, size_t n,
    const char *path)
{
	struct ctl_fetch	*cfs;
	size_t			 i;

	cfs = xcalloc(n ? n : 1, sizeof(*cfs));
	for (i = 0; i < n; i++)
		ctl_fetch_init(&cfs[i], ds[i], path);
	if (ctl_fetch_run(c, cfs, n) == -1)
		fatalx("event_base");
	return cfs;
}

/* The status object of one daemon as shown by `status --json`. */
static json_t *
ctl_status_obj(const struct ctl_fetch *cf)
{
	const struct ctl_daemon	*d = cf->cf_daemon;
	json_t			*o;
	char			 why[256], addr[300];

	snprintf(addr, sizeof(addr), "%s:%u", d->cd_host, d->cd_port);
	o = ctl_fetch_json(cf, why, sizeof(why));
	if (o != NULL && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
		snprintf(why, sizeof(why), "/status is not a JSON object");
	}
	if (o == NULL) {
		o = json_pack("{s:s, s:s, s:b, s:s}", "name", d->cd_name,
		    "admin", addr, "up", 0, "error", why);
		return o;
	}
	json_object_set_new(o, "name", json_string(d->cd_name));
	json_object_set_new(o, "admin", json_string(addr));
	json_object_set_new(o, "up", json_true());
	return o;
}

/* One row of the status table from a status object. */
static void
ctl_status_row(struct ctl_table *t, const json_t *o)
{
	const char	*cell[11];
	char		 b[11][96];
	const json_t	*up = json_object_get(o, "up");
	const json_t	*upt = json_object_get(o, "uptime_s");
	size_t		 i;

	for (i = 0; i < 11; i++)
		cell[i] = NULL;
	cell[0] = ctl_cell(o, "name", b[0], sizeof(b[0]));
	cell[3] = json_is_true(up) ? "up" : "down";
	if (json_is_true(up)) {
		cell[1] = ctl_cell(o, "daemon", b[1], sizeof(b[1]));
		cell[2] = ctl_cell(o, "id", b[2], sizeof(b[2]));
		if (json_is_number(upt))
			cell[4] = ctl_duration(json_number_value(upt), b[4],
			    sizeof(b[4]));
		cell[5] = ctl_cell(o, "connections", b[5], sizeof(b[5]));
		cell[6] = ctl_cell(o, "sessions", b[6], sizeof(b[6]));
		cell[7] = ctl_cell(o, "vehicles", b[7], sizeof(b[7]));
		cell[8] = ctl_cell(o, "handovers_in_flight", b[8],
		    sizeof(b[8]));
		cell[9] = ctl_cell(o, "outbox", b[9], sizeof(b[9]));
		cell[10] = ctl_cell(o, "pool_keys", b[10], sizeof(b[10]));
	}
	ctl_table_row(t, cell);
}

int
ctl_status(struct ctl *c, int argc, char **argv)
{
	static const char *const head[] = { "NAME", "DAEMON", "ID", "UP",
	    "UPTIME", "CONNS", "SESSIONS", "VEHICLES", "HANDOVERS", "OUTBOX",
	    "POOL_KEYS", NULL };
	const struct ctl_daemon	**ds;
	struct ctl_fetch	 *cfs;
	struct ctl_table	 *t;
	json_t			 *all, *o;
	size_t			  i, n;
	int			  rc;

	if ((rc = ctl_select(c, argc, argv, &ds, &n)) != CTL_OK)
		return rc;
	cfs = ctl_fetch_each(c, ds, n, "/status");
	all = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(all, ctl_status_obj(&cfs[i]));
	if (c->c_json)
		ctl_json_print(all);
	else {
		t = ctl_table_new(head);
		json_array_foreach(all, i, o)
			ctl_status_row(t, o);
		ctl_table_print(t);
		ctl_table_free(t);
		json_array_foreach(all, i, o)
			if (!json_is_true(json_object_get(o, "up")))
				ctl_err("%s (%s): %s",
				    json_string_value(json_object_get(o,
				    "name")), json_string_value(
				    json_object_get(o, "admin")),
				    json_string_value(json_object_get(o,
				    "error")));
	}
	json_decref(all);
	ctl_fetch_clear(cfs, n);
	free(cfs);
	free(ds);
	return CTL_OK;
}

/* The one daemon a single-daemon command names (or -a's). */
static const struct ctl_daemon *
ctl_one(struct ctl *c, const char *cmd, int argc, char **argv)
{
	if (c->c_single && argc == 0)
		return &c->c_daemons[0];
	if (argc != 1) {
		ctl_usage("%s takes one daemon NAME", cmd);
		return NULL;
	}
	if (c->c_single) {
		ctl_usage("-a names the daemon: no NAME after %s", cmd);
		return NULL;
	}
	if (ctl_daemon(c, argv[0]) == NULL) {
		ctl_usage("no daemon \"%s\" in %s", argv[0], c->c_conffile);
		return NULL;
	}
	return ctl_daemon(c, argv[0]);
}

int
ctl_list(struct ctl *c, const char *what, int argc, char **argv)
{
	const struct ctl_daemon	*d;
	struct ctl_fetch	 cf;
	json_t			*j;
	char			 path[64], why[256];
	int			 rc = CTL_FAIL;

	if ((d = ctl_one(c, what, argc, argv)) == NULL)
		return CTL_USAGE;
	snprintf(path, sizeof(path), "/status/%s", what);
	ctl_fetch_init(&cf, d, path);
	if (ctl_fetch_run(c, &cf, 1) == -1)
		fatalx("event_base");
	if ((j = ctl_fetch_json(&cf, why, sizeof(why))) == NULL) {
		if (cf.cf_code == 404)
			ctl_err("%s has no %s (not a tspd?)", d->cd_name, what);
		else
			ctl_err("%s: %s", d->cd_name, why);
	} else if (!json_is_array(j))
		ctl_err("%s: %s is not a JSON array", d->cd_name, path);
	else {
		if (c->c_json)
			ctl_json_print(j);
		else
			ctl_print_rows(strcmp(what, "sessions") == 0 ?
			    ctl_session_cols : ctl_vehicle_cols, j);
		rc = CTL_OK;
	}
	json_decref(j);
	ctl_fetch_clear(&cf, 1);
	return rc;
}

/* A TSP's handover row gets from/to from its role, its id and the peer. */
static void
ctl_tag_handover(json_t *e, const json_t *st)
{
	const json_t	*id = json_object_get(st, "id");
	const json_t	*peer = json_object_get(e, "peer");
	const char	*role = json_string_value(json_object_get(e, "role"));

	if (json_object_get(e, "from") != NULL || role == NULL ||
	    id == NULL || peer == NULL)
		return;
	if (strcmp(role, "source") == 0) {
		json_object_set(e, "from", (json_t *)id);
		json_object_set(e, "to", (json_t *)peer);
	} else if (strcmp(role, "target") == 0) {
		json_object_set(e, "from", (json_t *)peer);
		json_object_set(e, "to", (json_t *)id);
	}
}

/*
 * Append to out the elements of /status/<what> of the selected daemons,
 * each tagged with "name" (and given to tag with the daemon's /status).
 * Daemons without the view are skipped, or an error when named; daemons
 * that do not answer are reported, and an error when named.
 */
static int
ctl_gather(struct ctl *c, int argc, char **argv, const char *what,
    void (*tag)(json_t *, const json_t *), json_t *out)
{
	const struct ctl_daemon	**ds;
	struct ctl_fetch	 *cfs;
	json_t			 *st, *arr, *e;
	char			  path[64], why[256];
	size_t			  i, k, n;
	int			  rc = CTL_OK, named = argc > 0 || c->c_single;

	if ((rc = ctl_select(c, argc, argv, &ds, &n)) != CTL_OK)
		return rc;
	cfs = xcalloc(2 * n + 1, sizeof(*cfs));
	snprintf(path, sizeof(path), "/status/%s", what);
	for (i = 0; i < n; i++) {
		ctl_fetch_init(&cfs[2 * i], ds[i], "/status");
		ctl_fetch_init(&cfs[2 * i + 1], ds[i], path);
	}
	if (ctl_fetch_run(c, cfs, 2 * n) == -1)
		fatalx("event_base");
	for (i = 0; i < n; i++) {
		arr = ctl_fetch_json(&cfs[2 * i + 1], why, sizeof(why));
		if (arr == NULL && cfs[2 * i + 1].cf_code == 404) {
			if (named) {
				ctl_err("%s has no %s", ds[i]->cd_name, what);
				rc = CTL_FAIL;
			}
			continue;
		}
		if (arr == NULL || !json_is_array(arr)) {
			ctl_err("%s (%s:%u): %s", ds[i]->cd_name,
			    ds[i]->cd_host, ds[i]->cd_port, arr == NULL ? why :
			    "not a JSON array");
			if (named)
				rc = CTL_FAIL;
			json_decref(arr);
			continue;
		}
		st = ctl_fetch_json(&cfs[2 * i], why, sizeof(why));
		json_array_foreach(arr, k, e) {
			if (!json_is_object(e))
				continue;
			json_object_set_new(e, "name",
			    json_string(ds[i]->cd_name));
			if (tag != NULL && st != NULL)
				tag(e, st);
			json_array_append(out, e);
		}
		json_decref(st);
		json_decref(arr);
	}
	ctl_fetch_clear(cfs, 2 * n);
	free(cfs);
	free(ds);
	return rc;
}

/* Print what ctl_gather collected: all is well, or some rows came. */
static int
ctl_gathered(struct ctl *c, int rc, const struct ctl_col *cols, json_t *rows)
{
	if (rc == CTL_OK || json_array_size(rows) > 0) {
		if (c->c_json)
			ctl_json_print(rows);
		else
			ctl_print_rows(cols, rows);
	}
	json_decref(rows);
	return rc;
}

int
ctl_handovers(struct ctl *c, int argc, char **argv)
{
	json_t	*rows = json_array();

	return ctl_gathered(c, ctl_gather(c, argc, argv, "handovers",
	    ctl_tag_handover, rows), ctl_handover_cols, rows);
}

int
ctl_pools(struct ctl *c, int argc, char **argv)
{
	json_t	*rows = json_array();

	return ctl_gathered(c, ctl_gather(c, argc, argv, "pools", NULL, rows),
	    ctl_pool_cols, rows);
}

/* The per-TSP backlog of a row's "tsps" as "tsp-a=0,tsp-b=3" in "per_tsp". */
static void
ctl_outbox_text(json_t *row)
{
	json_t		*e;
	const char	*tsp;
	char		 buf[1024];
	size_t		 i, off = 0;
	int		 n;

	buf[0] = '\0';
	json_array_foreach(json_object_get(row, "tsps"), i, e) {
		if ((tsp = json_string_value(json_object_get(e, "tsp"))) ==
		    NULL)
			continue;
		n = snprintf(buf + off, sizeof(buf) - off, "%s%s=%"
		    JSON_INTEGER_FORMAT, off ? "," : "", tsp,
		    json_integer_value(json_object_get(e, "pending")));
		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			break;
		off += (size_t)n;
	}
	if (off > 0)
		json_object_set_new(row, "per_tsp", json_string(buf));
}

int
ctl_outbox(struct ctl *c, int argc, char **argv)
{
	const struct ctl_daemon	**ds;
	struct ctl_fetch	 *cfs;
	json_t			 *rows, *o, *st, *per;
	char			  why[256];
	size_t			  i, n;
	int			  rc = CTL_OK, named = argc > 0 || c->c_single;

	if ((rc = ctl_select(c, argc, argv, &ds, &n)) != CTL_OK)
		return rc;
	cfs = xcalloc(2 * n + 1, sizeof(*cfs));
	for (i = 0; i < n; i++) {
		ctl_fetch_init(&cfs[2 * i], ds[i], "/status");
		ctl_fetch_init(&cfs[2 * i + 1], ds[i], "/status/outbox");
	}
	if (ctl_fetch_run(c, cfs, 2 * n) == -1)
		fatalx("event_base");
	rows = json_array();
	for (i = 0; i < n; i++) {
		if ((st = ctl_fetch_json(&cfs[2 * i], why, sizeof(why))) ==
		    NULL) {
			ctl_err("%s (%s:%u): %s", ds[i]->cd_name,
			    ds[i]->cd_host, ds[i]->cd_port, why);
			if (named)
				rc = CTL_FAIL;
			continue;
		}
		if (json_object_get(st, "outbox") != NULL) {
			o = json_pack("{s:s, s:O*, s:O*, s:O}",
			    "name", ds[i]->cd_name,
			    "daemon", json_object_get(st, "daemon"),
			    "id", json_object_get(st, "id"),
			    "outbox", json_object_get(st, "outbox"));
			per = ctl_fetch_json(&cfs[2 * i + 1], why, sizeof(why));
			if (json_is_array(per))
				json_object_set(o, "tsps", per);
			json_decref(per);
			if (!c->c_json)
				ctl_outbox_text(o);
			json_array_append_new(rows, o);
		} else if (named) {
			ctl_err("%s has no outbox", ds[i]->cd_name);
			rc = CTL_FAIL;
		}
		json_decref(st);
	}
	ctl_fetch_clear(cfs, 2 * n);
	free(cfs);
	free(ds);
	return ctl_gathered(c, rc, ctl_outbox_cols, rows);
}
