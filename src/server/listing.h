/*
 * listing.h -- stockd's listings, one page of stock_list per request: over
 * HTTP GET /v1/skus, /v1/skus/{sku}/lines and /v1/orders/{order_id}/lines,
 * paged by ?after=<id>&limit=<n> (docs/http-api.md, "Listings"); over RESP
 * the LIST command (docs/protocol.md), which libstock's remote backend
 * sends.
 *
 * A page is read synchronously on the loop thread (stock_list waits for
 * the store: the embedded engine reads its memory, a remote store answers
 * one round trip), and holds at most STOCK_LIST_MAX entries, so a listing
 * of any length runs in bounded memory, one page per request.
 */
#ifndef STOCK_SERVER_LISTING_H
#define STOCK_SERVER_LISTING_H

#include <jansson.h>

#include "proto/http.h"
#include "proto/resp.h"
#include "server/conn.h"
#include "stock.h"

#define LISTING_LIMIT_DEFAULT 100
#define LISTING_LINK_MAX 768    /* "Link: <path?after=...&limit=N>; rel=\"next\"\r\n" */

/*
 * Reads the page that req's query asks (after=, limit=) of the listing
 * kind of `of` (NULL for SKUs) from store. On STOCK_OK, *body receives the
 * page, {"skus" or "lines": [...], "next": the id to pass as after, or
 * null at the end}, owned by the caller, and link a Link header to the
 * next page ("" at the end). Otherwise message (STOCK_MESSAGE_MAX bytes)
 * says why: a bad query (STOCK_INVALID) or stock_list's failure.
 */
stock_code listing_http(stock_t *store, stock_list_kind kind, const char *of,
                        const http_request *req, json_t **body,
                        char link[LISTING_LINK_MAX], char *message);

/* LIST SKUS | SKULINES sku | ORDERLINES order_id [AFTER id] [LIMIT n]:
 * answers an array of entries, each an array (docs/protocol.md), or the
 * error of stock_list with its code word. */
void listing_resp(conn *c, const resp_request *r);

#endif /* STOCK_SERVER_LISTING_H */
