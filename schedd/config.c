/* schedd configuration file. */
#include <stdio.h>
#include <string.h>

#include "config.h"

/* A duration directive within [min, max] milliseconds. */
static int
schedd_conf_duration(const struct conf_line *cl, uint64_t min, uint64_t max,
    uint64_t *out)
{
	uint64_t	v;

	if (conf_duration_ms(cl->cl_argv[1], &v) == -1 || v < min || v > max) {
		conf_error(cl, "%s must be a duration of %llums..%llums",
		    cl->cl_argv[0], (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * One directive: a common one, handover_timeout, ck2_lifetime,
 * key_reserve or kme_tls_min.
 */
static int
schedd_conf_line(void *arg, const struct conf_line *cl)
{
	struct schedd_conf	*sc = arg;
	const char		*d = cl->cl_argv[0];
	int			 rc;

	if ((rc = cfg_common_line(&sc->sc_common, cl)) != 0)
		return rc == 1 ? 0 : -1;
	if (strcmp(d, "kme_tls_min") == 0)
		return conf_kme_tls_min(cl, &sc->sc_kme_tls_min);
	if (strcmp(d, "handover_timeout") != 0 &&
	    strcmp(d, "ck2_lifetime") != 0 && strcmp(d, "key_reserve") != 0) {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	if (strcmp(d, "key_reserve") == 0) {
		if (conf_uint(cl->cl_argv[1], 0, SCHEDD_KEY_RESERVE_MAX,
		    &sc->sc_key_reserve) == -1) {
			conf_error(cl, "key_reserve must be a number of keys "
			    "0..%d", SCHEDD_KEY_RESERVE_MAX);
			return -1;
		}
		return 0;
	}
	if (strcmp(d, "handover_timeout") == 0)
		return schedd_conf_duration(cl, SCHEDD_MIN_TIMEOUT_MS,
		    SCHEDD_MAX_TIMEOUT_MS, &sc->sc_handover_timeout_ms);
	return schedd_conf_duration(cl, SCHEDD_MIN_TIMEOUT_MS,
	    SCHEDD_MAX_LIFETIME_MS, &sc->sc_ck2_lifetime_ms);
}

int
schedd_conf_load(const char *path, struct schedd_conf *sc)
{
	memset(sc, 0, sizeof(*sc));
	cfg_common_init(&sc->sc_common);
	sc->sc_handover_timeout_ms = SCHEDD_HANDOVER_TIMEOUT_MS;
	sc->sc_ck2_lifetime_ms = SCHEDD_CK2_LIFETIME_MS;
	sc->sc_key_reserve = SCHEDD_KEY_RESERVE;
	sc->sc_kme_tls_min = CONF_TLS_MIN_DEFAULT;
	if (conf_parse_file(path, schedd_conf_line, sc) != 0 ||
	    cfg_common_check(&sc->sc_common, path, 1) == -1) {
		schedd_conf_free(sc);
		return -1;
	}
	if (sc->sc_common.cc_id[0] == '\0')
		snprintf(sc->sc_common.cc_id, sizeof(sc->sc_common.cc_id),
		    "sched");
	return 0;
}

void
schedd_conf_free(struct schedd_conf *sc)
{
	cfg_common_free(&sc->sc_common);
	memset(sc, 0, sizeof(*sc));
}
