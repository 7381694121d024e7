/*
 * sharded_move.c -- adding members to a sharded store: stock_reshard
 * (docs/sharded.md, "Adding a shard").
 *
 * A SKU's shard is rendezvous hashing over the member positions (shard_of),
 * so appending members moves only the SKUs (and the directory entries, by
 * their ids' homes) that one of the new members now wins. The move runs
 * offline, in steps that each commit on two members at once or not at all:
 *
 *   1. start: under member 0's map lock, check that no one else is
 *      connected, then record the move (stock_shard_move) on every member:
 *      from then on stores refuse to open over them;
 *   2. resolve what the old map left prepared (and what an interrupted run
 *      of this move left: its pairs are gids of the old map);
 *   3. move each directory entry whose home changes: insert on the new
 *      home, delete on the old, one two-phase pair per page and home (a
 *      store of one member has no directory: it is written first);
 *   4. move each SKU whose shard changes: first point its ids' directory
 *      entries at the new shard (an upsert, harmless if the move is then
 *      interrupted: the SKU still has to move and will), then one pair:
 *      its rows exported and deleted on the old shard, imported on the new;
 *      a hot SKU's piece moves the same way, from an old member that the
 *      new map no longer picks among the SKU's K to a new member it picks;
 *   5. finish: record the new map on every member, drop the old map's
 *      decisions, then the move records.
 *
 * A pair prepares both transactions, records the decision on the source
 * (stock_decisions, as a cart's coordinator does, under a gid of the old
 * map whose coordinator is the source) and commits both, so a crash leaves
 * it whole or absent once resolved. Every step finds its work again by
 * looking at the data (what is not where the new map puts it), so running
 * again after a crash finishes the move.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backend/sharded.h"
#include "lib/clock.h"
#include "lib/message.h"

/* Directory entries or SKUs read from a member per page. */
#define SHARD_MOVE_PAGE 500

const char shard_move_schema_sql[] =
    "-- A SKU's rows (stock_reshard): its bucket rows, lines, their refunds, its\n"
    "-- adjustments and holds, and the orders of its lines.\n"
    "CREATE OR REPLACE FUNCTION stock_move_export(p_sku text) RETURNS json\n"
    "LANGUAGE sql STABLE AS $$\n"
    "    SELECT json_build_object(\n"
    "        'inventory', (SELECT coalesce(json_agg(t), '[]') FROM inventory t WHERE sku_id = p_sku),\n"
    "        'flow', (SELECT coalesce(json_agg(t), '[]') FROM inventory_flow t WHERE sku_id = p_sku),\n"
    "        'refunds', (SELECT coalesce(json_agg(t), '[]') FROM inventory_refunds t\n"
    "                     WHERE line_id IN (SELECT line_id FROM inventory_flow WHERE sku_id = p_sku)),\n"
    "        'adjustments', (SELECT coalesce(json_agg(t), '[]') FROM inventory_adjustments t\n"
    "                         WHERE sku_id = p_sku),\n"
    "        'holds', (SELECT coalesce(json_agg(t), '[]') FROM inventory_holds t WHERE sku_id = p_sku),\n"
    "        'orders', (SELECT coalesce(json_agg(t), '[]') FROM inventory_orders t\n"
    "                    WHERE order_id IN (SELECT order_id FROM inventory_flow WHERE sku_id = p_sku)))\n"
    "$$;\n"
    "-- Takes in what stock_move_export gave. An order's row stays on the shard\n"
    "-- it came from too (the directory may name it there).\n"
    "CREATE OR REPLACE FUNCTION stock_move_import(p json) RETURNS integer\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    INSERT INTO inventory SELECT * FROM json_populate_recordset(NULL::inventory, p->'inventory');\n"
    "    INSERT INTO inventory_flow SELECT * FROM json_populate_recordset(NULL::inventory_flow, p->'flow');\n"
    "    INSERT INTO inventory_refunds\n"
    "        SELECT * FROM json_populate_recordset(NULL::inventory_refunds, p->'refunds');\n"
    "    INSERT INTO inventory_adjustments\n"
    "        SELECT * FROM json_populate_recordset(NULL::inventory_adjustments, p->'adjustments');\n"
    "    INSERT INTO inventory_holds\n"
    "        SELECT * FROM json_populate_recordset(NULL::inventory_holds, p->'holds');\n"
    "    INSERT INTO inventory_orders\n"
    "        SELECT * FROM json_populate_recordset(NULL::inventory_orders, p->'orders')\n"
    "        ON CONFLICT (order_id) DO NOTHING;\n"
    "    RETURN json_array_length(p->'flow');\n"
    "END $$;\n"
    "CREATE OR REPLACE FUNCTION stock_move_delete(p_sku text) RETURNS void\n"
    "LANGUAGE sql AS $$\n"
    "    DELETE FROM inventory_refunds\n"
    "     WHERE line_id IN (SELECT line_id FROM inventory_flow WHERE sku_id = p_sku);\n"
    "    DELETE FROM inventory_flow WHERE sku_id = p_sku;\n"
    "    DELETE FROM inventory_adjustments WHERE sku_id = p_sku;\n"
    "    DELETE FROM inventory_holds WHERE sku_id = p_sku;\n"
    "    DELETE FROM inventory WHERE sku_id = p_sku;\n"
    "$$;\n"
    "-- The ids of a SKU's lines, their refunds and its adjustments, by kind.\n"
    "CREATE OR REPLACE FUNCTION stock_move_ids(p_sku text) RETURNS TABLE(kind text, id text)\n"
    "LANGUAGE sql STABLE AS $$\n"
    "    SELECT 'L', line_id FROM inventory_flow WHERE sku_id = p_sku\n"
    "    UNION ALL SELECT 'R', r.refund_id FROM inventory_refunds r\n"
    "               JOIN inventory_flow f ON f.line_id = r.line_id WHERE f.sku_id = p_sku\n"
    "    UNION ALL SELECT 'A', adjust_id FROM inventory_adjustments WHERE sku_id = p_sku\n"
    "$$;\n";

typedef struct mover {
    sharded_store *to;          /* the new member list: connections, shard_of */
    uint32_t old_count;
    char from_map[SHARD_MAP_ID_LEN + 1], to_map[SHARD_MAP_ID_LEN + 1];
    stock_log_hook log;
    uint64_t seq;               /* numbers the pairs */
    stock_reshard_info *info;
    stock_code code;            /* of the failure: STOCK_IO unless set */
    char *message;
} mover;

/* A failure (m->code, STOCK_IO unless a refusal set it): the message says
 * why, fmt taking one string. */
static bool fail(mover *m, const char *fmt, const char *why)
{
    message_set(m->message, STOCK_MESSAGE_MAX, fmt, why);
    return false;
}

/* A refusal: code, and message (already set) says why. */
static bool refuse(mover *m, stock_code code)
{
    m->code = code;
    return false;
}

/* sql on member i's control session (connected if need be; in the
 * transaction begun on it, if any); NULL after setting the message. */
static PGresult *run(mover *m, uint32_t i, const char *sql, int count, const char *const *values,
                     ExecStatusType want)
{
    char error[STOCK_MESSAGE_MAX];
    PGconn *conn = m->to->shards[i].control;
    if (conn == NULL || PQtransactionStatus(conn) != PQTRANS_INTRANS)
        conn = shard_control(m->to, i, error, sizeof error);
    PGresult *result = conn == NULL ? NULL
        : shard_query(conn, i, m->to->shards[i].options.timeout_ms, sql, count, values, want,
                      error, sizeof error);
    if (result == NULL)
        fail(m, "reshard: %s", error);
    return result;
}

static bool run_ok(mover *m, uint32_t i, const char *sql, int count, const char *const *values)
{
    PGresult *result = run(m, i, sql, count, values, PGRES_COMMAND_OK);
    PQclear(result);
    return result != NULL;
}

/* ------------------------------------------------------------- pairs */

/* One step on two members, all or nothing: on the source (in BEGIN on its
 * control session) export_sql gives the rows as one JSON value and
 * delete_sql deletes them; on the target import_sql takes that value ($1)
 * and answers a count. Both are PREPAREd, commit is recorded on the
 * source, then both are COMMIT PREPAREd. Each stage is a DEBUG message
 * (the crash suite kills the process at one). */
typedef struct move_pair {
    uint32_t source, target;
    const char *export_sql, *delete_sql;
    int count;
    const char *const *values;
    const char *import_sql;
    int64_t imported;
} move_pair;

/* Runs sql in the transaction begun on member i; its one value into *out
 * (owned by the result in *held), or NULL. */
static bool pair_statement(mover *m, uint32_t i, const char *sql, int count,
                           const char *const *values, PGresult **held)
{
    PGresult *result = run(m, i, sql, count, values, PGRES_TUPLES_OK);
    if (result != NULL && (PQntuples(result) != 1 || PQnfields(result) != 1)) {
        PQclear(result);
        result = NULL;
        fail(m, "reshard: %s", "a move statement answered no single value");
    }
    *held = result;
    return result != NULL;
}

/* Both sides run, each in its transaction. */
static bool pair_sides(mover *m, move_pair *pair)
{
    PGresult *exported = NULL, *deleted = NULL, *imported = NULL;
    bool ok = run_ok(m, pair->source, "BEGIN", 0, NULL) &&
              pair_statement(m, pair->source, pair->export_sql, pair->count, pair->values,
                             &exported) &&
              pair_statement(m, pair->source, pair->delete_sql, pair->count, pair->values,
                             &deleted) &&
              run_ok(m, pair->target, "BEGIN", 0, NULL);
    if (ok) {
        const char *rows[1] = {PQgetvalue(exported, 0, 0)};
        ok = pair_statement(m, pair->target, pair->import_sql, 1, rows, &imported);
    }
    pair->imported = ok ? strtoll(PQgetvalue(imported, 0, 0), NULL, 10) : 0;
    PQclear(exported);
    PQclear(deleted);
    PQclear(imported);
    return ok;
}

/* Rolls back what is open on both sides, waiting stock_timeout_ms at most
 * on each; a session that does not answer is dropped (the server rolls
 * its transaction back when it notices). */
static void pair_abandon(mover *m, const move_pair *pair)
{
    uint32_t sides[2] = {pair->source, pair->target};
    for (int k = 0; k < 2; k++) {
        shard *member = &m->to->shards[sides[k]];
        if (member->control == NULL || PQtransactionStatus(member->control) == PQTRANS_IDLE)
            continue;
        PGresult *result = pg_exec_until(member->control, "ROLLBACK", 0, NULL,
                                         pg_deadline(member->options.timeout_ms));
        if (PQresultStatus(result) != PGRES_COMMAND_OK) {
            PQfinish(member->control);
            member->control = NULL;
        }
        PQclear(result);
    }
}

static bool pair_run(mover *m, move_pair *pair)
{
    char gid[SHARD_GID_MAX], sql[SHARD_GID_MAX + 32], error[STOCK_MESSAGE_MAX];
    snprintf(gid, sizeof gid, "stock:%s:%u:%" PRIx64 ":%" PRIu64, m->from_map, pair->source,
             (uint64_t)m->to->client_id, ++m->seq);
    bool ok = pair_sides(m, pair);
    if (ok)
        stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: %s ran, preparing", gid);
    snprintf(sql, sizeof sql, "PREPARE TRANSACTION '%s'", gid);
    ok = ok && run_ok(m, pair->target, sql, 0, NULL);
    if (ok)
        stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: %s prepared on shard %u", gid,
                  pair->target);
    ok = ok && run_ok(m, pair->source, sql, 0, NULL);
    if (!ok) {
        /* What was prepared stays without a decision: the next run's
         * recovery rolls it back. */
        pair_abandon(m, pair);
        return false;
    }
    stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: %s prepared on shard %u", gid, pair->source);
    uint32_t timeout_ms = shard_timeout_ms(m->to);
    int decision = shard_decide(m->to->shards[pair->source].control, timeout_ms, gid, true,
                                error, sizeof error);
    if (decision != 1)
        return fail(m, "reshard: %s", decision < 0 ? error : "a recovery rolled a step back "
                    "while it was prepared: is another reshard running?");
    stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: %s decided commit", gid);
    uint32_t sides[2] = {pair->target, pair->source};
    for (int k = 0; k < 2; k++) {
        if (!shard_finish_prepared(m->to->shards[sides[k]].control, timeout_ms, gid, true,
                                   error, sizeof error))
            return fail(m, "reshard: %s (decided: the next run commits it)", error);
        stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: %s committed on shard %u", gid, sides[k]);
    }
    return true;
}

/* --------------------------------------------------------- directory */

/* Array literals of directory kinds and ids. */
typedef struct id_arrays {
    buf kinds, ids;
    uint32_t count;
} id_arrays;

static void arrays_free(id_arrays *arrays)
{
    buf_free(&arrays->kinds);
    buf_free(&arrays->ids);
    arrays->count = 0;
}

/* The rows of result (kind, id in columns 0, 1) whose home under the new
 * map is home. False on out of memory. */
static bool arrays_for_home(mover *m, const PGresult *result, uint32_t home, id_arrays *arrays)
{
    bool ok = buf_append(&arrays->kinds, "{", 1) && buf_append(&arrays->ids, "{", 1);
    for (int row = 0; ok && row < PQntuples(result); row++) {
        const char *kind = PQgetvalue(result, row, 0), *id = PQgetvalue(result, row, 1);
        stock_id key = {id, (uint32_t)strlen(id)};
        if (shard_of(m->to, key) != home)
            continue;
        ok = shard_array_add(&arrays->kinds, arrays->count, (stock_id){kind, 1}) &&
             shard_array_add(&arrays->ids, arrays->count, key);
        arrays->count++;
    }
    return ok && shard_array_close(&arrays->kinds) && shard_array_close(&arrays->ids);
}

#define IDS_MATCH "(kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"

/* Moves the entries of one page of member h whose new home is home. */
static bool move_entries(mover *m, uint32_t h, const PGresult *page, uint32_t home)
{
    id_arrays arrays = {0};
    bool ok = arrays_for_home(m, page, home, &arrays);
    if (!ok)
        fail(m, "reshard: %s", "no memory for the directory");
    if (ok && arrays.count > 0) {
        const char *values[2] = {(char *)arrays.kinds.data, (char *)arrays.ids.data};
        move_pair pair = {
            .source = h, .target = home, .count = 2, .values = values,
            .export_sql = "SELECT coalesce(json_agg(d), '[]') FROM stock_ids d WHERE " IDS_MATCH,
            .delete_sql = "WITH gone AS (DELETE FROM stock_ids WHERE " IDS_MATCH
                          " RETURNING 1) SELECT count(*) FROM gone",
            .import_sql = "WITH moved AS (INSERT INTO stock_ids SELECT * FROM "
                          "json_populate_recordset(NULL::stock_ids, $1::json) RETURNING 1) "
                          "SELECT count(*) FROM moved"};
        ok = pair_run(m, &pair);
        if (ok)
            m->info->ids += (uint64_t)pair.imported;
    }
    arrays_free(&arrays);
    return ok;
}

/* Moves every entry of old member h whose home changes, a page at a time. */
static bool move_directory(mover *m, uint32_t h)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SHARD_MOVE_PAGE);
    char kind[2] = "", after[STOCK_ID_MAX + 1] = "";
    for (;;) {
        const char *values[3] = {kind, after, limit};
        PGresult *page = run(m, h, "SELECT kind, id FROM stock_ids WHERE (kind, id COLLATE \"C\") "
                             "> ($1, $2 COLLATE \"C\") ORDER BY kind, id COLLATE \"C\" LIMIT "
                             "$3::integer", 3, values, PGRES_TUPLES_OK);
        if (page == NULL)
            return false;
        int rows = PQntuples(page);
        bool ok = true;
        for (uint32_t home = 0; ok && home < m->to->count; home++)
            ok = home == h || move_entries(m, h, page, home);
        if (ok && rows > 0) {
            snprintf(kind, sizeof kind, "%s", PQgetvalue(page, rows - 1, 0));
            snprintf(after, sizeof after, "%s", PQgetvalue(page, rows - 1, 1));
        }
        PQclear(page);
        if (!ok || rows < SHARD_MOVE_PAGE)
            return ok;
    }
}

/* Writes an entry naming member shard for each id of ids (kind, id), on
 * the id's home under the new map; one already there is overwritten, or
 * kept when keep. */
static bool write_entries(mover *m, const PGresult *ids, uint32_t shard, bool keep)
{
    char target[16];
    snprintf(target, sizeof target, "%u", shard);
    const char *sql = keep ? "INSERT INTO stock_ids SELECT k, i, $3::integer FROM unnest("
                             "$1::text[], $2::text[]) AS x(k, i) ON CONFLICT (kind, id) DO NOTHING"
                           : "INSERT INTO stock_ids SELECT k, i, $3::integer FROM unnest("
                             "$1::text[], $2::text[]) AS x(k, i) ON CONFLICT (kind, id) DO "
                             "UPDATE SET shard = EXCLUDED.shard";
    bool ok = true;
    for (uint32_t home = 0; ok && home < m->to->count; home++) {
        id_arrays arrays = {0};
        ok = arrays_for_home(m, ids, home, &arrays);
        if (!ok)
            fail(m, "reshard: %s", "no memory for the directory");
        const char *args[3] = {(char *)arrays.kinds.data, (char *)arrays.ids.data, target};
        if (ok && arrays.count > 0)
            ok = run_ok(m, home, sql, 3, args);
        arrays_free(&arrays);
    }
    return ok;
}

/* Points the directory entries of sku's ids (on member i) at member j. */
static bool redirect_ids(mover *m, uint32_t i, uint32_t j, const char *sku)
{
    const char *values[1] = {sku};
    PGresult *ids = run(m, i, "SELECT kind, id FROM stock_move_ids($1)", 1, values,
                        PGRES_TUPLES_OK);
    bool ok = ids != NULL && write_entries(m, ids, j, false);
    PQclear(ids);
    return ok;
}

/* A store of one member keeps no directory (there is nothing to find):
 * writes one for every id it holds, a table at a time in the order of its
 * primary key. Each insert stands alone and may be done again: the store
 * is offline, and an entry names member 0 until its SKU moves. */
static bool build_directory(mover *m)
{
    static const char *const tables[][3] = {{"L", "line_id", "inventory_flow"},
                                            {"O", "order_id", "inventory_orders"},
                                            {"R", "refund_id", "inventory_refunds"},
                                            {"A", "adjust_id", "inventory_adjustments"}};
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SHARD_MOVE_PAGE);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        char sql[200], after[STOCK_ID_MAX + 1] = "";
        snprintf(sql, sizeof sql, "SELECT '%s', %s FROM %s WHERE %s > $1 ORDER BY %s LIMIT "
                 "$2::integer", tables[t][0], tables[t][1], tables[t][2], tables[t][1],
                 tables[t][1]);
        for (int rows = SHARD_MOVE_PAGE; rows == SHARD_MOVE_PAGE;) {
            const char *values[2] = {after, limit};
            PGresult *page = run(m, 0, sql, 2, values, PGRES_TUPLES_OK);
            if (page == NULL)
                return false;
            rows = PQntuples(page);
            bool ok = write_entries(m, page, 0, true);
            if (rows > 0)
                snprintf(after, sizeof after, "%s", PQgetvalue(page, rows - 1, 1));
            PQclear(page);
            if (!ok)
                return false;
        }
    }
    stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: directory written for member 0");
    return true;
}

/* -------------------------------------------------------------- SKUs */

/* Moves sku's rows on member i (all of a SKU, or one piece of a hot one)
 * to member j. */
static bool move_sku(mover *m, uint32_t i, uint32_t j, const char *sku)
{
    if (!redirect_ids(m, i, j, sku))
        return false;
    stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: the ids of %s point at shard %u", sku, j);
    const char *values[1] = {sku};
    move_pair pair = {.source = i, .target = j, .count = 1, .values = values,
                      .export_sql = "SELECT stock_move_export($1)",
                      .delete_sql = "SELECT stock_move_delete($1)",
                      .import_sql = "SELECT stock_move_import($1::json)"};
    if (!pair_run(m, &pair))
        return false;
    m->info->skus++;
    m->info->lines += (uint64_t)pair.imported;
    return true;
}

/* Whether member k holds rows of sku, into *held; false on failure. */
static bool holds(mover *m, uint32_t k, const char *sku, bool *held)
{
    const char *values[1] = {sku};
    PGresult *result = run(m, k, "SELECT EXISTS (SELECT 1 FROM inventory WHERE sku_id = $1)", 1,
                           values, PGRES_TUPLES_OK);
    if (result != NULL)
        *held = PQgetvalue(result, 0, 0)[0] == 't';
    PQclear(result);
    return result != NULL;
}

/* Where the pieces of a hot SKU go: the old members that held a piece
 * and are no longer among the K the new map picks (dropped), and the new
 * members it picks that hold none (places), each in rank order. Adding
 * members only pushes old members down the ranking, so there are at least
 * as many places as dropped pieces. */
typedef struct hot_moves {
    uint32_t dropped[SHARD_MAX], places[SHARD_MAX];
    uint32_t dropped_count, place_count;
} hot_moves;

static bool hot_plan(mover *m, const char *sku, hot_moves *plan)
{
    stock_id id = stock_id_from_cstr(sku);
    uint32_t spread = shard_spread(m->to, id), old_seen = 0;
    *plan = (hot_moves){0};
    for (uint32_t rank = 0; rank < m->to->count && old_seen < spread; rank++) {
        uint32_t k = shard_piece(m->to, id, rank);
        bool picked = rank < spread, held = false;
        old_seen += k < m->old_count;
        if (picked == (k < m->old_count))
            continue;   /* an old member that keeps its piece, or a new one not picked */
        if (!holds(m, k, sku, &held))
            return false;
        if (k < m->old_count && held)
            plan->dropped[plan->dropped_count++] = k;
        else if (k >= m->old_count && !held)
            plan->places[plan->place_count++] = k;
    }
    if (plan->dropped_count <= plan->place_count)
        return true;
    message_set(m->message, STOCK_MESSAGE_MAX, "reshard: hot SKU %s has pieces on %u members "
                "the new map drops but only %u new member(s) to take them: was it spread over "
                "more members than the hot= segment says?", sku, plan->dropped_count,
                plan->place_count);
    return refuse(m, STOCK_INVALID);
}

/* The hot SKU sku, seen on old member i: if the new map no longer picks
 * i, i's piece is the d-th dropped one and goes to the d-th place. The
 * pieces of one SKU are alike (stock, with the lines and adjustments that
 * ran there): which member holds which rank matters only for piece 0,
 * which must have rows (docs/sharded.md, "Hot SKUs across shards"). A new
 * piece 0 that receives no piece (the dropped one had no rows: a SKU
 * named hot after it was created) gets an empty row. Rows on a member
 * that was none of the SKU's pieces (no store reads them) stay. */
static bool move_hot(mover *m, uint32_t i, const char *sku)
{
    stock_id id = stock_id_from_cstr(sku);
    uint32_t spread = shard_spread(m->to, id), first = shard_of(m->to, id);
    bool picked = false;
    for (uint32_t rank = 0; rank < spread; rank++)
        picked = picked || shard_piece(m->to, id, rank) == i;
    if (picked && first < m->old_count)
        return true;
    hot_moves plan;
    if (!hot_plan(m, sku, &plan))
        return false;
    for (uint32_t d = 0; d < plan.dropped_count; d++)
        if (plan.dropped[d] == i)
            return move_sku(m, i, plan.places[d], sku);
    if (plan.dropped_count > 0 || plan.place_count == 0 || plan.places[0] != first)
        return true;
    const char *values[1] = {sku};
    bool ok = run_ok(m, first, shard_empty_piece_sql, 1, values);
    if (ok)
        stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: hot SKU %s: an empty piece 0 on shard %u",
                  sku, first);
    return ok;
}

/* Moves every SKU of old member i that the new map puts elsewhere. */
static bool move_skus(mover *m, uint32_t i)
{
    char limit[16], after[STOCK_ID_MAX + 1] = "";
    snprintf(limit, sizeof limit, "%d", SHARD_MOVE_PAGE);
    for (;;) {
        const char *values[2] = {after, limit};
        PGresult *page = run(m, i, "SELECT DISTINCT sku_id COLLATE \"C\" FROM inventory WHERE "
                             "sku_id COLLATE \"C\" > $1 ORDER BY 1 LIMIT $2::integer", 2, values,
                             PGRES_TUPLES_OK);
        if (page == NULL)
            return false;
        int rows = PQntuples(page);
        bool ok = true;
        for (int row = 0; ok && row < rows; row++) {
            const char *sku = PQgetvalue(page, row, 0);
            stock_id id = stock_id_from_cstr(sku);
            uint32_t j = shard_of(m->to, id);
            if (shard_spread(m->to, id) > 1)
                ok = move_hot(m, i, sku);
            else
                ok = j == i || move_sku(m, i, j, sku);
        }
        if (ok && rows > 0)
            snprintf(after, sizeof after, "%s", PQgetvalue(page, rows - 1, 0));
        PQclear(page);
        if (!ok || rows < SHARD_MOVE_PAGE)
            return ok;
    }
}

/* ------------------------------------------------------ start, finish */

/* How the members stand (move_plan). */
typedef enum move_state {
    MOVE_FRESH,       /* the old map on the old members, nothing on the new */
    MOVE_RESUME,      /* a move of these lists is recorded: finish it */
    MOVE_DONE,        /* every member records the new map already */
} move_state;

/* Whether the new members hold no stock and no directory. */
static bool new_members_empty(mover *m)
{
    for (uint32_t k = m->old_count; k < m->to->count; k++) {
        PGresult *result = run(m, k, "SELECT EXISTS (SELECT 1 FROM inventory) OR EXISTS "
                               "(SELECT 1 FROM inventory_flow) OR EXISTS (SELECT 1 FROM stock_ids)",
                               0, NULL, PGRES_TUPLES_OK);
        if (result == NULL)
            return false;
        bool used = PQgetvalue(result, 0, 0)[0] == 't';
        PQclear(result);
        if (used) {
            message_set(m->message, STOCK_MESSAGE_MAX, "reshard: new member %u (%s) holds "
                        "stock already: a new member must be an empty database", k,
                        m->to->shards[k].name);
            return refuse(m, STOCK_INVALID);
        }
    }
    return true;
}

/* A recorded move: it must be this one, and each member must stand before
 * or after its finish. */
static bool check_resume(mover *m, const shard_entry *entries, const shard_entry *move)
{
    if (move->move_from_count != (int)m->old_count || move->move_to_count != (int)m->to->count) {
        message_set(m->message, STOCK_MESSAGE_MAX, "reshard: the members record a move from "
                    "%d to %d shards (map %s to %s), not from %u to %u: rerun it with its "
                    "member lists", move->move_from_count, move->move_to_count, move->move_from,
                    move->move_to, m->old_count, m->to->count);
        return refuse(m, STOCK_INVALID);
    }
    snprintf(m->from_map, sizeof m->from_map, "%s", move->move_from);
    snprintf(m->to_map, sizeof m->to_map, "%s", move->move_to);
    for (uint32_t k = 0; k < m->to->count; k++) {
        const shard_entry *e = &entries[k];
        bool before = k < m->old_count ? e->present && strcmp(e->map_id, m->from_map) == 0 &&
                                         e->position == (int)k && e->count == (int)m->old_count
                                       : !e->present;
        bool after = e->present && strcmp(e->map_id, m->to_map) == 0 && e->position == (int)k &&
                     e->count == (int)m->to->count;
        if (!before && !after) {
            message_set(m->message, STOCK_MESSAGE_MAX, "reshard: member %u (%s) is neither "
                        "shard %u of map %s nor of map %s: the member lists are not the move's",
                        k, m->to->shards[k].name, k, m->from_map, m->to_map);
            return refuse(m, STOCK_INVALID);
        }
    }
    return true;
}

/* Decides from what the members record whether to start, resume or do
 * nothing; refuses member lists that are not the store's. */
static bool move_plan(mover *m, move_state *state)
{
    shard_entry entries[SHARD_MAX];
    const shard_entry *move = NULL;
    for (uint32_t k = 0; k < m->to->count; k++) {
        if (!shard_entry_read(&m->to->shards[k], &entries[k], m->message, STOCK_MESSAGE_MAX))
            return refuse(m, pg_lost_or(m->to->shards[k].control, STOCK_IO));
        move = move == NULL && entries[k].moving ? &entries[k] : move;
    }
    if (move != NULL) {
        *state = MOVE_RESUME;
        return check_resume(m, entries, move);
    }
    bool done = true;
    for (uint32_t k = 0; done && k < m->to->count; k++)
        done = entries[0].present && shard_entry_fits(m->to, entries, k, m->to->count, NULL, 0);
    if (done) {
        *state = MOVE_DONE;
        snprintf(m->to_map, sizeof m->to_map, "%s", entries[0].map_id);
        return true;
    }
    *state = MOVE_FRESH;
    if (!entries[0].present) {
        message_set(m->message, STOCK_MESSAGE_MAX, "reshard: member 0 (%s) records no shard "
                    "map: the old member list is no sharded store", m->to->shards[0].name);
        return refuse(m, STOCK_INVALID);
    }
    for (uint32_t k = 0; k < m->old_count; k++)
        if (!shard_entry_fits(m->to, entries, k, m->old_count, m->message, STOCK_MESSAGE_MAX))
            return refuse(m, STOCK_INVALID);
    for (uint32_t k = m->old_count; k < m->to->count; k++) {
        if (entries[k].present) {
            message_set(m->message, STOCK_MESSAGE_MAX, "reshard: new member %u (%s) is shard "
                        "%d of map %s already", k, m->to->shards[k].name, entries[k].position,
                        entries[k].map_id);
            return refuse(m, STOCK_INVALID);
        }
    }
    snprintf(m->from_map, sizeof m->from_map, "%s", entries[0].map_id);
    uint64_t random = 0;
    if (getrandom(&random, sizeof random, 0) != sizeof random)
        return fail(m, "reshard: %s", "no random bytes for the new map id");
    snprintf(m->to_map, sizeof m->to_map, "%016" PRIx64, random);
    return new_members_empty(m);
}

/* Refuses if anyone else has a session on a member's database. */
static bool check_offline(mover *m)
{
    for (uint32_t k = 0; k < m->to->count; k++) {
        PGresult *result = run(m, k, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND pid <> pg_backend_pid() AND "
                               "backend_type = 'client backend'", 0, NULL, PGRES_TUPLES_OK);
        if (result == NULL)
            return false;
        long others = strtol(PQgetvalue(result, 0, 0), NULL, 10);
        PQclear(result);
        if (others > 0) {
            message_set(m->message, STOCK_MESSAGE_MAX, "reshard: member %u (%s) has %ld other "
                        "session(s): stop every store and client over these members first "
                        "(the move runs offline)", k, m->to->shards[k].name, others);
            return refuse(m, STOCK_UNAVAILABLE);
        }
    }
    return true;
}

/* Records the move on every member, member 0 last and under the lock that
 * opening stores take to check the map: a store that opened before is
 * seen by check_offline, one that opens after sees the record. */
static bool record_move(mover *m)
{
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO stock_shard_move SELECT '%s', '%s', %u, %u WHERE NOT "
             "EXISTS (SELECT 1 FROM stock_shard_move)", m->from_map, m->to_map, m->old_count,
             m->to->count);
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d)", SHARD_MAP_LOCK_KEY);
    PGresult *locked = NULL;
    bool ok = run_ok(m, 0, "BEGIN", 0, NULL) &&
              (locked = run(m, 0, lock, 0, NULL, PGRES_TUPLES_OK)) != NULL && check_offline(m);
    PQclear(locked);
    for (uint32_t k = m->to->count; ok && k-- > 0;)
        ok = run_ok(m, k, sql, 0, NULL);
    ok = run_ok(m, 0, ok ? "COMMIT" : "ROLLBACK", 0, NULL) && ok;
    return ok;
}

/* Records the new map on every member, drops the old map's decisions (none
 * of its transactions is prepared any more), then the move records. */
static bool finish(mover *m)
{
    char sql[160];
    bool ok = true;
    for (uint32_t k = 0; ok && k < m->to->count; k++) {
        snprintf(sql, sizeof sql, "INSERT INTO stock_shard_map VALUES ('%s', %u, %u)", m->to_map,
                 k, m->to->count);
        ok = run_ok(m, k, "BEGIN", 0, NULL) &&
             run_ok(m, k, "DELETE FROM stock_shard_map", 0, NULL) && run_ok(m, k, sql, 0, NULL) &&
             run_ok(m, k, "COMMIT", 0, NULL);
        if (ok)
            stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: map %s recorded on shard %u",
                      m->to_map, k);
    }
    snprintf(sql, sizeof sql, "DELETE FROM stock_decisions WHERE gid LIKE 'stock:%s:%%'",
             m->from_map);
    for (uint32_t k = 0; ok && k < m->to->count; k++)
        ok = run_ok(m, k, sql, 0, NULL);
    for (uint32_t k = m->to->count; ok && k-- > 0;) {
        ok = run_ok(m, k, "DELETE FROM stock_shard_move", 0, NULL);
        if (ok)
            stock_log(&m->log, STOCK_LOG_DEBUG, "reshard: move record removed from shard %u", k);
    }
    return ok;
}

/* Commits or rolls back what a crash of the old map's stores, or of an
 * earlier run of this move, left prepared. */
static bool resolve(mover *m)
{
    PGconn *conns[SHARD_MAX];
    for (uint32_t k = 0; k < m->to->count; k++)
        conns[k] = m->to->shards[k].control;
    char error[STOCK_MESSAGE_MAX];
    int resolved = shard_resolve_in_doubt(conns, m->to->count, m->from_map, 0,
                                          shard_timeout_ms(m->to), &m->log, error, sizeof error);
    return resolved >= 0 || fail(m, "reshard: recovery: %s", error);
}

static bool move_all(mover *m)
{
    bool ok = resolve(m) && (m->old_count > 1 || build_directory(m));
    for (uint32_t h = 0; ok && h < m->old_count; h++)
        ok = move_directory(m, h);
    for (uint32_t i = 0; ok && i < m->old_count; i++)
        ok = move_skus(m, i);
    return ok && finish(m);
}

/* Connects every member of the new list, checks them (before anything is
 * written: a refused list changes nothing) and installs the tables. */
static bool connect_all(mover *m)
{
    for (uint32_t k = 0; k < m->to->count; k++) {
        char error[STOCK_MESSAGE_MAX];
        if (shard_control(m->to, k, error, sizeof error) == NULL) {
            fail(m, "reshard: %s", error);
            return refuse(m, STOCK_UNAVAILABLE);
        }
    }
    stock_code code = shard_check_prepared(m->to, m->message, STOCK_MESSAGE_MAX);
    if (code != STOCK_OK)
        return refuse(m, code);
    for (uint32_t k = 0; k < m->to->count; k++)
        if (!shard_schema_install(&m->to->shards[k], m->message, STOCK_MESSAGE_MAX))
            return refuse(m, pg_lost_or(m->to->shards[k].control, STOCK_IO));
    return true;
}

/* The length of uri's scheme and hot= segment, its ';' included. */
static size_t hot_segment_len(const char *uri)
{
    size_t len = strlen(SHARD_SCHEME);
    if (strncmp(uri + len, SHARD_HOT_PREFIX, strlen(SHARD_HOT_PREFIX)) == 0) {
        size_t segment = strcspn(uri + len, ";");
        len += segment + (uri[len + segment] == ';');
    }
    return len;
}

/* Parses both lists: to_uri must name from_uri's members, spelled the
 * same (their stock_* options aside), then at least one more, and the
 * same hot SKUs. */
static bool parse_lists(mover *m, const char *from_uri, const char *to_uri,
                        const stock_config *config, sharded_store *from)
{
    for (int k = 0; k < 2; k++) {
        const char *uri = k == 0 ? from_uri : to_uri;
        if (uri == NULL || strncmp(uri, SHARD_SCHEME, strlen(SHARD_SCHEME)) != 0) {
            fail(m, "reshard: the %s member list is not a shards: URI", k == 0 ? "old" : "new");
            return refuse(m, STOCK_INVALID);
        }
        sharded_store *list = k == 0 ? from : m->to;
        stock_code code = shard_hot_parse(list, uri + strlen(SHARD_SCHEME), m->message,
                                          STOCK_MESSAGE_MAX);
        if (code == STOCK_OK)
            code = shard_parse_members(list, uri, config, m->message, STOCK_MESSAGE_MAX);
        if (code == STOCK_OK)
            code = shard_hot_check(list, m->message, STOCK_MESSAGE_MAX);
        if (code != STOCK_OK)
            return refuse(m, code);
    }
    /* Which SKUs are hot, and over how many pieces, decides where their
     * pieces are: a move under another hot list would misplace them. */
    size_t old_hot = hot_segment_len(from_uri), new_hot = hot_segment_len(to_uri);
    if (old_hot != new_hot || memcmp(from_uri, to_uri, old_hot) != 0) {
        message_set(m->message, STOCK_MESSAGE_MAX, "reshard: the new list must name the same "
                    "hot SKUs as the old one (the same hot= segment, or none)");
        return refuse(m, STOCK_INVALID);
    }
    m->old_count = from->count;
    if (m->to->count <= from->count) {
        message_set(m->message, STOCK_MESSAGE_MAX, "reshard: the new list must name more "
                    "members than the old one (%u)", from->count);
        return refuse(m, STOCK_INVALID);
    }
    for (uint32_t k = 0; k < from->count; k++) {
        if (strcmp(from->shards[k].options.conninfo, m->to->shards[k].options.conninfo) != 0) {
            message_set(m->message, STOCK_MESSAGE_MAX, "reshard: member %u of the new list is "
                        "not member %u of the old one: the new list must begin with the old "
                        "members, in their order", k, k);
            return refuse(m, STOCK_INVALID);
        }
    }
    return true;
}

static bool reshard(mover *m, const char *from_uri, const char *to_uri,
                    const stock_config *config)
{
    sharded_store from = {0};
    bool ok = parse_lists(m, from_uri, to_uri, config, &from);
    for (uint32_t k = 0; k < from.count; k++)
        pg_options_free(&from.shards[k].options);
    free(from.hot_text);
    move_state state = MOVE_FRESH;
    ok = ok && connect_all(m) && move_plan(m, &state);
    if (!ok || state == MOVE_DONE) {
        m->info->already = ok;
        return ok;
    }
    m->info->resumed = state == MOVE_RESUME;
    ok = state == MOVE_RESUME ? check_offline(m) : record_move(m);
    if (ok)
        stock_log(&m->log, STOCK_LOG_NOTICE, "reshard: %s the move from map %s (%u shards) to "
                  "map %s (%u shards)", m->info->resumed ? "resuming" : "starting", m->from_map,
                  m->old_count, m->to_map, m->to->count);
    return ok && move_all(m);
}

stock_code stock_reshard(const char *from_uri, const char *to_uri, const stock_config *config,
                         stock_reshard_info *info, char *message)
{
    stock_reshard_info ignored;
    char scratch[STOCK_MESSAGE_MAX];
    mover m = {.info = info != NULL ? info : &ignored, .code = STOCK_IO,
               .message = message != NULL ? message : scratch,
               .log = stock_log_hook_of(config)};
    memset(m.info, 0, sizeof *m.info);
    m.message[0] = '\0';
    m.to = calloc(1, sizeof *m.to);
    if (m.to == NULL)
        return STOCK_NOMEM;
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = (uint64_t)clock_now_us(CLOCK_REALTIME);
    m.to->client_id = (int64_t)(id >> 1);
    bool ok = reshard(&m, from_uri, to_uri, config);
    for (uint32_t k = 0; k < m.to->count; k++) {
        PQfinish(m.to->shards[k].control);
        pg_options_free(&m.to->shards[k].options);
    }
    free(m.to->hot_text);
    free(m.to);
    if (ok)
        m.message[0] = '\0';
    return ok ? STOCK_OK : m.code;
}
