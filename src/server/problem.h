/*
 * problem.h -- stockd's HTTP errors as RFC 9457 problem details
 * (application/problem+json, docs/http-api.md "Errors").
 *
 * A problem object carries the members RFC 9457 defines (type, title,
 * status, detail) and, as extension members, what a program parses: `code`,
 * the result's word (the RESP error word: INSUFFICIENT, NOTFOUND, ...), and
 * each fact of the detail ("sku=A12 available=3" gives "sku": "A12" and
 * "available": 3). So a client reads numbers from members, never from text.
 */
#ifndef STOCK_SERVER_PROBLEM_H
#define STOCK_SERVER_PROBLEM_H

#include <jansson.h>

#define PROBLEM_CONTENT_TYPE "application/problem+json"

/* The problem object for an error answered with HTTP status and the code
 * word (e.g. 409, "INSUFFICIENT"), detail being the facts or sentence after
 * it. Its type is "tag:stockd,2026:" + the word in lower case; its title
 * the word's sentence. NULL on out of memory; the caller owns the result. */
json_t *problem_json(int status, const char *word, const char *detail);

#endif /* STOCK_SERVER_PROBLEM_H */
