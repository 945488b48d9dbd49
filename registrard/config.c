/* registrard configuration file. */
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* rsa_bits 2048|3072. */
static int
registrard_conf_bits(struct registrard_conf *rc, const struct conf_line *cl)
{
	if (cl->cl_argc != 2) {
		conf_error(cl, "rsa_bits takes one argument");
		return -1;
	}
	if (strcmp(cl->cl_argv[1], "2048") == 0)
		rc->rc_rsa_bits = 2048;
	else if (strcmp(cl->cl_argv[1], "3072") == 0)
		rc->rc_rsa_bits = 3072;
	else {
		conf_error(cl, "rsa_bits must be 2048 or 3072");
		return -1;
	}
	return 0;
}

/* The COUNT argument of cl, 0..max, into *out. */
static int
registrard_conf_count(const struct conf_line *cl, uint64_t max, uint64_t *out)
{
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s: expected one number", cl->cl_argv[0]);
		return -1;
	}
	if (conf_uint(cl->cl_argv[1], 0, max, out) == -1) {
		conf_error(cl, "%s: bad number \"%s\" (want 0..%llu)",
		    cl->cl_argv[0], cl->cl_argv[1], (unsigned long long)max);
		return -1;
	}
	return 0;
}

/* One directive: a common one, rsa_bits, rsa_primes, workers or key_pool. */
static int
registrard_conf_line(void *arg, const struct conf_line *cl)
{
	struct registrard_conf	*rc = arg;
	uint64_t		 v;
	int			 r;

	if ((r = cfg_common_line(&rc->rc_common, cl)) != 0)
		return r == 1 ? 0 : -1;
	if (strcmp(cl->cl_argv[0], "rsa_bits") == 0)
		return registrard_conf_bits(rc, cl);
	if (strcmp(cl->cl_argv[0], "rsa_primes") == 0) {
		if (cl->cl_argc != 2 || (strcmp(cl->cl_argv[1], "2") != 0 &&
		    strcmp(cl->cl_argv[1], "3") != 0)) {
			conf_error(cl, "rsa_primes must be 2 or 3");
			return -1;
		}
		rc->rc_rsa_primes = cl->cl_argv[1][0] - '0';
		return 0;
	}
	if (strcmp(cl->cl_argv[0], "workers") == 0) {
		if (registrard_conf_count(cl, REGISTRARD_MAX_WORKERS, &v) == -1)
			return -1;
		rc->rc_workers = (int)v;
		return 0;
	}
	if (strcmp(cl->cl_argv[0], "store_key") == 0 ||
	    strcmp(cl->cl_argv[0], "store_key_old") == 0) {
		char	**p = cl->cl_argv[0][9] == '\0' ? &rc->rc_store_key :
			    &rc->rc_store_key_old;

		if (cl->cl_argc != 2) {
			conf_error(cl, "%s: expected a file", cl->cl_argv[0]);
			return -1;
		}
		free(*p);
		if ((*p = strdup(cl->cl_argv[1])) == NULL) {
			conf_error(cl, "%s: out of memory", cl->cl_argv[0]);
			return -1;
		}
		return 0;
	}
	if (strcmp(cl->cl_argv[0], "key_pool") == 0) {
		if (registrard_conf_count(cl, REGISTRARD_MAX_KEY_POOL, &v) == -1)
			return -1;
		rc->rc_key_pool = (size_t)v;
		return 0;
	}
	conf_error(cl, "unknown directive \"%s\"", cl->cl_argv[0]);
	return -1;
}

int
registrard_conf_load(const char *path, struct registrard_conf *rc)
{
	memset(rc, 0, sizeof(*rc));
	cfg_common_init(&rc->rc_common);
	rc->rc_rsa_bits = 2048;
	rc->rc_rsa_primes = 2;
	rc->rc_workers = REGISTRARD_WORKERS_AUTO;
	rc->rc_key_pool = REGISTRARD_KEY_POOL;
	if (conf_parse_file(path, registrard_conf_line, rc) != 0 ||
	    cfg_common_check(&rc->rc_common, path, 1) == -1) {
		registrard_conf_free(rc);	/* a failed load leaves nothing */
		return -1;
	}
	return 0;
}

void
registrard_conf_free(struct registrard_conf *rc)
{
	cfg_common_free(&rc->rc_common);
	free(rc->rc_store_key);
	free(rc->rc_store_key_old);
	memset(rc, 0, sizeof(*rc));
}
