/*
 * F2 on the trusted authority: the protocol step of registrard's outbox
 * service (outboxd.h), whose state is a struct registrar.  Its
 * configuration is a struct registrard_conf, whose rsa_bits and key_pool
 * a reload changes in place.
 */
#ifndef REGISTRARD_SERVER_H
#define REGISTRARD_SERVER_H

#include <event2/event.h>

#include "config.h"
#include "outboxd.h"

struct registrar;

extern const struct outboxd_proto registrar_proto;

/*
 * Once the service is made (its state is r): start the key generation
 * on base, with the configuration's workers and key_pool; 0 or -1.
 */
int	registrar_start(struct registrar *r, struct event_base *base);
/* After a reload: the key size and key_pool of the configuration. */
void	registrar_reload(struct registrar *r);
/*
 * Before the service is freed: registrations still waiting for their key
 * pairs are dropped unstored, the workers stopped, kept pairs wiped.
 */
void	registrar_stop(struct registrar *r);

#endif
