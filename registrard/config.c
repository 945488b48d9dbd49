/* registrard configuration file. */
#include <string.h>

#include "config.h"

/* One directive: a common one or rsa_bits. */
static int
registrard_conf_line(void *arg, const struct conf_line *cl)
{
	struct registrard_conf	*rc = arg;
	int			 r;

	if ((r = cfg_common_line(&rc->rc_common, cl)) != 0)
		return r == 1 ? 0 : -1;
	if (strcmp(cl->cl_argv[0], "rsa_bits") != 0) {
		conf_error(cl, "unknown directive \"%s\"", cl->cl_argv[0]);
		return -1;
	}
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

int
registrard_conf_load(const char *path, struct registrard_conf *rc)
{
	memset(rc, 0, sizeof(*rc));
	cfg_common_init(&rc->rc_common);
	rc->rc_rsa_bits = 2048;
	if (conf_parse_file(path, registrard_conf_line, rc) != 0)
		return -1;
	return cfg_common_check(&rc->rc_common, path, 1);
}

void
registrard_conf_free(struct registrard_conf *rc)
{
	cfg_common_free(&rc->rc_common);
}
