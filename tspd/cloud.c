/*
 * What the instances of a region tell each other on the cloud bus
 * (cloudbus.h): a message for a vehicle whose connection another instance
 * may hold (VehicleSend).  The instance that has a message for a vehicle
 * it holds no connection of sends it to every instance ("*"); the one
 * that holds the vehicle's open connection sends it on, the others drop
 * it.  The message is a SessionMsg sealed under the vehicle's K1 already,
 * so the bus adds the cloud's protection around what the vehicle checks
 * itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"

#include "cloudbus.h"
#include "cloudnote.h"
#include "tspd.h"

static struct metric	*m_notes;

/* A VehicleSend that opened: send its SessionMsg if we hold the vehicle. */
static void
cloud_vehicle_send(struct tspd *env, const char *from,
    const Qroam__VehicleSend *vs)
{
	Qroam__SessionMsg	*sm = NULL;
	struct conn		*vc;

	if (!id_valid_vin(vs->vehicle_id) ||
	    (sm = qroam__session_msg__unpack(NULL, vs->session_msg.len,
	    vs->session_msg.data)) == NULL ||
	    strcmp(sm->vehicle_id, vs->vehicle_id) != 0) {
		metrics_refusal("cloud_bad_vehicle_send");
		log_warnx("cloud bus: note from %s refused: bad VehicleSend",
		    from);
	} else if ((vc = tspd_vehicle_conn(env, vs->vehicle_id)) == NULL ||
	    !conn_is_open(vc)) {
		metric_inc(m_notes, "not_held");
		log_debug("cloud bus: vehicle=%s (from %s): no connection here",
		    vs->vehicle_id, from);
	} else if (conn_send(vc, QROAM__MSG_TYPE__MT_SESSION_MSG, 0,
	    &sm->base) == -1)
		log_warnx("cloud bus: vehicle=%s (from %s): sending failed",
		    vs->vehicle_id, from);
	else {
		metric_inc(m_notes, "delivered");
		log_info("cloud bus: vehicle=%s: session message from %s sent",
		    vs->vehicle_id, from);
	}
	if (sm != NULL)
		qroam__session_msg__free_unpacked(sm, NULL);
}

static void
cloud_note(void *arg, const char *from, const Qroam__CloudNote *note)
{
	struct tspd	*env = arg;

	metric_inc(m_notes, "opened");
	switch (note->body_case) {
	case QROAM__CLOUD_NOTE__BODY_VEHICLE_SEND:
		cloud_vehicle_send(env, from, note->vehicle_send);
		break;
	default:
		log_warnx("cloud bus: note of kind %d from %s dropped",
		    (int)note->body_case, from);
		break;
	}
}

void
tspd_cloud_start(struct tspd *env)
{
	struct tspd_config	*conf = &env->t_conf;
	struct cloudbus_opts	 o;

	m_notes = metric_counter("qroam_cloud_notes_total",
	    "Notes of the cloud bus between the region's instances: sent, "
	    "opened, delivered to a vehicle here, not_held (no connection "
	    "here), not_sent", "event");
	if (conf->tc_cloud_key == NULL)
		return;
	memset(&o, 0, sizeof(o));
	o.cbo_conninfo = conf->tc_common.cc_store;
	o.cbo_tsp_id = env->t_id;
	o.cbo_instance = conf->tc_instance;
	o.cbo_k0 = conf->tc_cloud_k0;
	o.cbo_t0_ms = (int64_t)conf->tc_cloud_epoch_ms;
	o.cbo_dt_ms = (int64_t)conf->tc_cloud_step_ms;
	env->t_bus = cloudbus_new(env->t_base, &o, cloud_note, env);
	/* The stream holds K0 now (and drops it at its first step). */
	crypto_wipe(conf->tc_cloud_k0, sizeof(conf->tc_cloud_k0));
	if (env->t_bus == NULL)
		fatalx("cannot start the cloud bus");
	log_info("cloud bus: instance %s, step %llums", conf->tc_instance,
	    (unsigned long long)conf->tc_cloud_step_ms);
}

void
tspd_cloud_free(struct tspd *env)
{
	cloudbus_free(env->t_bus);
	env->t_bus = NULL;
}

int
tspd_vehicle_send_session(struct tspd *env, const char *vid,
    const Qroam__SessionMsg *sm, const char *what)
{
	Qroam__CloudNote	 note = QROAM__CLOUD_NOTE__INIT;
	Qroam__VehicleSend	 vs = QROAM__VEHICLE_SEND__INIT;
	struct conn		*vc;
	uint8_t			*buf;
	int			 rc;

	if ((vc = tspd_vehicle_conn(env, vid)) != NULL && conn_is_open(vc)) {
		if (conn_send(vc, QROAM__MSG_TYPE__MT_SESSION_MSG, 0,
		    &sm->base) == 0)
			return 0;
		log_warnx("%s vehicle=%s: sending failed", what, vid);
		return -1;
	}
	if (env->t_bus == NULL) {
		log_info("%s vehicle=%s: no open connection, not told", what,
		    vid);
		return -1;
	}
	vs.session_msg.len = qroam__session_msg__get_packed_size(sm);
	if ((buf = malloc(vs.session_msg.len)) == NULL) {
		log_warnx("%s vehicle=%s: no memory", what, vid);
		return -1;
	}
	qroam__session_msg__pack(sm, buf);
	vs.vehicle_id = (char *)vid;
	vs.session_msg.data = buf;
	note.body_case = QROAM__CLOUD_NOTE__BODY_VEHICLE_SEND;
	note.vehicle_send = &vs;
	rc = cloudbus_send(env->t_bus, CLOUDNOTE_ALL, &note);
	free(buf);
	metric_inc(m_notes, rc == 0 ? "sent" : "not_sent");
	if (rc == -1)
		log_info("%s vehicle=%s: no open connection here and the cloud "
		    "bus is down, not told", what, vid);
	else
		log_info("%s vehicle=%s: no open connection here, sent on the "
		    "cloud bus", what, vid);
	return rc;
}

json_t *
tspd_cloud_json(const struct tspd *env)
{
	return env->t_bus == NULL ? json_null() : cloudbus_json(env->t_bus);
}
