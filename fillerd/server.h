/*
 * F1 on the filler: the protocol step of fillerd's outbox service
 * (outboxd.h).  Its configuration is a struct fillerd_conf, whose fill
 * parameters a reload changes in place.
 */
#ifndef FILLERD_SERVER_H
#define FILLERD_SERVER_H

#include "config.h"
#include "outboxd.h"

extern const struct outboxd_proto filler_proto;

#endif
