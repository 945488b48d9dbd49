/*
 * F2 on the trusted authority: the protocol step of registrard's outbox
 * service (outboxd.h).  Its configuration is a struct registrard_conf,
 * whose rsa_bits a reload changes in place.
 */
#ifndef REGISTRARD_SERVER_H
#define REGISTRARD_SERVER_H

#include "config.h"
#include "outboxd.h"

extern const struct outboxd_proto registrar_proto;

#endif
