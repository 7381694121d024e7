/*
 * problem.c -- RFC 9457 problem details for stockd's HTTP errors (see
 * problem.h). The facts of a detail are the leading "key=value" words that
 * lib/result.c writes; each known key becomes a member named as the HTTP
 * bodies name that thing (line -> line_id), numbers as JSON integers.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/uri.h"
#include "server/problem.h"
#include "stock.h"

#define PROBLEM_TYPE_PREFIX "tag:stockd,2026:"
#define PROBLEM_WORD_MAX 32
#define PROBLEM_FACTS_MAX 4   /* "sku=A available=3" has 2; room to spare */

/* A fact key of lib/result.c's wording and the member it becomes. */
typedef struct fact_key {
    const char *key;
    const char *member;
    bool integer;
} fact_key;

static const fact_key fact_keys[] = {
    {"sku", "sku", false},
    {"line", "line_id", false},
    {"order", "order_id", false},
    {"refund", "refund_id", false},
    {"adjustment", "adjustment_id", false},
    {"available", "available", true},
    {"refundable", "refundable", true},
    {"current", "current", true},
};

/* Titles of the words that are not result codes (stock_strerror has the
 * others): the server's own refusals. */
static const struct { const char *word, *title; } server_titles[] = {
    {"NOAUTH", "authentication required"},
    {"TIMEOUT", "the connection was idle too long"},
    {"TOOBIG", "the request is too large"},
    {"INFLIGHT", "a request with this Idempotency-Key is still in progress"},
};

static const char *title_of(const char *word)
{
    for (int code = 0; code < STOCK_CODE_COUNT; code++)
        if (strcmp(stock_code_name((stock_code)code), word) == 0)
            return stock_strerror((stock_code)code);
    for (size_t i = 0; i < sizeof server_titles / sizeof server_titles[0]; i++)
        if (strcmp(server_titles[i].word, word) == 0)
            return server_titles[i].title;
    return "error";
}

static const fact_key *fact_key_of(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof fact_keys / sizeof fact_keys[0]; i++)
        if (uri_is(key, len, fact_keys[i].key))
            return &fact_keys[i];
    return NULL;
}

/* Adds one fact as a member; false if the value is not what the key holds
 * (then the walk stops: what follows is prose). The numbers of facts are
 * levels and quantities: 0..INT64_MAX. */
static bool add_fact(json_t *problem, const fact_key *fact, const char *value, size_t len)
{
    if (!fact->integer)
        return json_object_set_new(problem, fact->member, json_stringn(value, len)) == 0;
    uint64_t number = 0;
    if (!uri_parse_uint(value, len, 0, INT64_MAX, &number))
        return false;
    return json_object_set_new(problem, fact->member, json_integer((json_int_t)number)) == 0;
}

/* Walks the leading "key=value" words of detail (ids hold no space, so a
 * word ends at one); stops at the first word that is not a known fact. */
static void add_facts(json_t *problem, const char *detail)
{
    const char *at = detail;
    for (int taken = 0; taken < PROBLEM_FACTS_MAX && *at != '\0'; taken++) {
        size_t word = strcspn(at, " ");
        const char *equals = memchr(at, '=', word);
        const fact_key *fact = equals != NULL ? fact_key_of(at, (size_t)(equals - at)) : NULL;
        if (fact == NULL || !add_fact(problem, fact, equals + 1, word - (size_t)(equals + 1 - at)))
            return;
        at += word;
        at += strspn(at, " ");
    }
}

json_t *problem_json(int status, const char *word, const char *detail)
{
    char type[sizeof PROBLEM_TYPE_PREFIX + PROBLEM_WORD_MAX];
    size_t used = (size_t)snprintf(type, sizeof type, "%s", PROBLEM_TYPE_PREFIX);
    for (size_t i = 0; word[i] != '\0' && used + 1 < sizeof type; i++)
        type[used++] = (char)tolower((unsigned char)word[i]);
    type[used] = '\0';
    json_t *problem = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type,
                                "title", title_of(word), "status", status,
                                "detail", detail, "code", word);
    if (problem != NULL)
        add_facts(problem, detail);
    return problem;
}
