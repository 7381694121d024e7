/*
 * subject.h -- the rule for the NATS subject prefixes of stockintake and
 * stockevents (docs/intake.md, docs/events.md): one or more subject tokens
 * joined by '.', no wildcard.
 */
#ifndef STOCK_PROTO_SUBJECT_H
#define STOCK_PROTO_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

/* True if prefix is 1..max bytes of printable ASCII without space, '*'
 * or '>', not starting or ending with '.', without an empty token. */
bool subject_prefix_valid(const char *prefix, size_t max);

#endif /* STOCK_PROTO_SUBJECT_H */
