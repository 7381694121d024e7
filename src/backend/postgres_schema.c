/*
 * postgres_schema.c -- the postgres backend's tables and functions, created
 * or migrated at open, and the statements the pipeline runs.
 *
 * The tables follow docs/schemes.md: inventory(sku_id, leaved_amount) --
 * here one row per bucket of a SKU, with the SKU's adjusted / deducted /
 * refunded totals kept beside its stock so that I2 can be checked row by
 * row -- and a flow table with a row per deducted line. Orders, refunds and
 * adjustments have idempotency tables keyed by their ids.
 *
 * Each operation is one PL/pgSQL function, so that one pipelined statement
 * decides one op without a round trip between its steps, and so that a
 * business failure (insufficient stock, a conflict) is a result row, not an
 * SQL error: an error would abort every op of the transaction. Deductions are
 * that scheme's conditional update (stock_take); an order runs inside a
 * subtransaction that rolls back when one of its SKUs is short.
 *
 * Result codes in the functions are stock_code values (stock.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres.h"
#include "lib/message.h"

#define PG_SCHEMA_VERSION 1
/* Serialises schema installation between processes opening at once. */
#define PG_SCHEMA_LOCK_KEY 7379004

static const char pg_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS stock_schema (version integer NOT NULL, digest text NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS inventory (\n"
    "    sku_id text NOT NULL,\n"
    "    bucket integer NOT NULL,\n"
    "    leaved_amount bigint NOT NULL CHECK (leaved_amount >= 0),\n"
    "    adjusted bigint NOT NULL,\n"
    "    deducted bigint NOT NULL DEFAULT 0,\n"
    "    refunded bigint NOT NULL DEFAULT 0,\n"
    "    buckets integer NOT NULL DEFAULT 1,\n"
    "    PRIMARY KEY (sku_id, bucket));\n"
    "CREATE TABLE IF NOT EXISTS inventory_flow (\n"
    "    line_id text PRIMARY KEY,\n"
    "    sku_id text NOT NULL,\n"
    "    qty bigint NOT NULL,\n"
    "    refunded bigint NOT NULL DEFAULT 0,\n"
    "    order_id text NOT NULL,\n"
    "    position integer NOT NULL,\n"
    "    bucket integer NOT NULL,\n"
    "    time_us bigint NOT NULL,\n"
    "    available_after bigint NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS inventory_orders (\n"
    "    order_id text PRIMARY KEY,\n"
    "    line_count integer NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS inventory_refunds (\n"
    "    refund_id text PRIMARY KEY,\n"
    "    line_id text NOT NULL,\n"
    "    qty bigint NOT NULL,\n"
    "    available bigint NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS inventory_adjustments (\n"
    "    adjust_id text PRIMARY KEY,\n"
    "    sku_id text NOT NULL,\n"
    "    delta bigint NOT NULL,\n"
    "    available bigint NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS stock_clients (\n"
    "    client_id bigint PRIMARY KEY,\n"
    "    last_txn bigint NOT NULL);\n"
    "\n"
    "-- The SKU's total available stock over its buckets, NULL if there is no SKU.\n"
    "CREATE OR REPLACE FUNCTION stock_total(p_sku text) RETURNS bigint\n"
    "LANGUAGE sql STABLE AS $$\n"
    "    SELECT sum(leaved_amount)::bigint FROM inventory WHERE sku_id = p_sku\n"
    "$$;\n"
    "\n"
    "-- Takes p_qty off the SKU with the conditional update (leaved_amount >= p_qty), on the\n"
    "-- bucket this session prefers (stock.bucket_seed, random per store: one\n"
    "-- transaction's deductions then lock one bucket, so stores sharing a SKU\n"
    "-- neither queue on one row nor deadlock), then on the others; if no bucket covers p_qty\n"
    "-- alone, locks them all and takes across them when their total does.\n"
    "-- taken: the bucket taken from (first one), -1 insufficient, -2 no SKU.\n"
    "-- available: the total after (or the total that was short).\n"
    "CREATE OR REPLACE FUNCTION stock_take(p_sku text, p_qty bigint, p_buckets integer,\n"
    "                                      OUT taken integer, OUT available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    first integer := coalesce(current_setting('stock.bucket_seed', true), '0')::integer\n"
    "                     % p_buckets;\n"
    "    b integer;\n"
    "    rest bigint;\n"
    "    part bigint;\n"
    "BEGIN\n"
    "    UPDATE inventory SET leaved_amount = leaved_amount - p_qty,\n"
    "                         deducted = deducted + p_qty\n"
    "     WHERE sku_id = p_sku AND bucket = first AND leaved_amount >= p_qty;\n"
    "    IF FOUND THEN\n"
    "        taken := first;\n"
    "    ELSE\n"
    "        FOR b IN SELECT bucket FROM inventory\n"
    "                  WHERE sku_id = p_sku AND bucket <> first AND leaved_amount >= p_qty\n"
    "                  ORDER BY bucket LOOP\n"
    "            UPDATE inventory SET leaved_amount = leaved_amount - p_qty,\n"
    "                                 deducted = deducted + p_qty\n"
    "             WHERE sku_id = p_sku AND bucket = b AND leaved_amount >= p_qty;\n"
    "            IF FOUND THEN\n"
    "                taken := b;\n"
    "                EXIT;\n"
    "            END IF;\n"
    "        END LOOP;\n"
    "    END IF;\n"
    "    IF taken IS NULL THEN\n"
    "        SELECT sum(t.leaved_amount)::bigint INTO available FROM\n"
    "            (SELECT leaved_amount FROM inventory WHERE sku_id = p_sku\n"
    "              ORDER BY bucket FOR UPDATE) t;\n"
    "        IF available IS NULL THEN\n"
    "            taken := -2;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "        IF available < p_qty THEN\n"
    "            taken := -1;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "        rest := p_qty;\n"
    "        FOR b, part IN SELECT bucket, leaved_amount FROM inventory\n"
    "                        WHERE sku_id = p_sku AND leaved_amount > 0 ORDER BY bucket LOOP\n"
    "            part := least(part, rest);\n"
    "            UPDATE inventory SET leaved_amount = leaved_amount - part,\n"
    "                                 deducted = deducted + part\n"
    "             WHERE sku_id = p_sku AND bucket = b AND leaved_amount >= part;\n"
    "            taken := coalesce(taken, b);\n"
    "            rest := rest - part;\n"
    "            EXIT WHEN rest = 0;\n"
    "        END LOOP;\n"
    "        ASSERT rest = 0, 'stock_take: locked buckets did not cover their total';\n"
    "    END IF;\n"
    "    available := stock_total(p_sku);\n"
    "END $$;\n"
    "\n"
    "-- One deduction, the database scheme's way: refuse a replayed or reused line id,\n"
    "-- then the conditional update, then the flow row.\n"
    "-- code: 0 OK, 1 REPLAY, 2 INSUFFICIENT, 3 NOT_FOUND, 4 CONFLICT (stock.h).\n"
    "CREATE OR REPLACE FUNCTION stock_deduct(p_line text, p_sku text, p_qty bigint,\n"
    "                                        p_now bigint, p_buckets integer,\n"
    "                                        OUT code integer, OUT available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_flow record;\n"
    "    v_take record;\n"
    "BEGIN\n"
    "    SELECT sku_id, qty, order_id, available_after INTO v_flow\n"
    "      FROM inventory_flow WHERE line_id = p_line;\n"
    "    IF FOUND THEN\n"
    "        IF v_flow.sku_id = p_sku AND v_flow.qty = p_qty AND v_flow.order_id = '' THEN\n"
    "            code := 1;\n"
    "            available := v_flow.available_after;\n"
    "        ELSE\n"
    "            code := 4;\n"
    "        END IF;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    v_take := stock_take(p_sku, p_qty, p_buckets);\n"
    "    available := v_take.available;\n"
    "    IF v_take.taken = -2 THEN\n"
    "        code := 3;\n"
    "    ELSIF v_take.taken = -1 THEN\n"
    "        code := 2;\n"
    "    ELSE\n"
    "        INSERT INTO inventory_flow\n"
    "        VALUES (p_line, p_sku, p_qty, 0, '', 0, v_take.taken, p_now, v_take.available);\n"
    "        code := 0;\n"
    "    END IF;\n"
    "END $$;\n"
    "\n"
    "-- Several deductions of one SKU merged: one conditional update for their\n"
    "-- sum and one multi-row flow insert. When the sum does not fit, the earliest\n"
    "-- that fit succeed, exactly as if applied one by one in arrival order. The\n"
    "-- caller never passes the same line id twice.\n"
    "CREATE OR REPLACE FUNCTION stock_deduct_merged(p_sku text, p_lines text[], p_qtys bigint[],\n"
    "                                               p_now bigint, p_buckets integer)\n"
    "RETURNS TABLE(code integer, available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_count integer := cardinality(p_lines);\n"
    "    v_codes integer[] := array_fill(0, ARRAY[v_count]);\n"
    "    v_avail bigint[] := array_fill(0::bigint, ARRAY[v_count]);\n"
    "    v_flow record;\n"
    "    v_take record;\n"
    "    v_want bigint := 0;\n"
    "    v_fit bigint := 0;\n"
    "    v_rest bigint;\n"
    "    v_i integer;\n"
    "BEGIN\n"
    "    FOR v_flow IN SELECT x.n, f.sku_id, f.qty, f.order_id, f.available_after\n"
    "                    FROM unnest(p_lines) WITH ORDINALITY AS x(line_id, n),\n"
    "                         LATERAL (SELECT * FROM inventory_flow g\n"
    "                                   WHERE g.line_id = x.line_id LIMIT 1) f LOOP\n"
    "        IF v_flow.sku_id = p_sku AND v_flow.qty = p_qtys[v_flow.n] AND v_flow.order_id = '' THEN\n"
    "            v_codes[v_flow.n] := 1;\n"
    "            v_avail[v_flow.n] := v_flow.available_after;\n"
    "        ELSE\n"
    "            v_codes[v_flow.n] := 4;\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    FOR v_i IN 1..v_count LOOP\n"
    "        IF v_codes[v_i] = 0 THEN\n"
    "            v_want := v_want + p_qtys[v_i];\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    IF v_want > 0 THEN\n"
    "        v_take := stock_take(p_sku, v_want, p_buckets);\n"
    "        IF v_take.taken = -2 THEN\n"
    "            FOR v_i IN 1..v_count LOOP\n"
    "                IF v_codes[v_i] = 0 THEN\n"
    "                    v_codes[v_i] := 3;\n"
    "                END IF;\n"
    "            END LOOP;\n"
    "        ELSE\n"
    "            -- the total before, whether the sum fit or not (stock_take locked it)\n"
    "            v_rest := v_take.available + CASE WHEN v_take.taken >= 0 THEN v_want ELSE 0 END;\n"
    "            FOR v_i IN 1..v_count LOOP\n"
    "                IF v_codes[v_i] = 0 AND p_qtys[v_i] <= v_rest THEN\n"
    "                    v_rest := v_rest - p_qtys[v_i];\n"
    "                    v_fit := v_fit + p_qtys[v_i];\n"
    "                ELSIF v_codes[v_i] = 0 THEN\n"
    "                    v_codes[v_i] := 2;\n"
    "                END IF;\n"
    "                IF v_codes[v_i] <> 1 THEN\n"
    "                    v_avail[v_i] := v_rest;\n"
    "                END IF;\n"
    "            END LOOP;\n"
    "            IF v_take.taken = -1 AND v_fit > 0 THEN\n"
    "                v_take := stock_take(p_sku, v_fit, p_buckets);\n"
    "                ASSERT v_take.taken >= 0, 'stock_deduct_merged: locked stock vanished';\n"
    "            END IF;\n"
    "            ASSERT v_take.taken < 0 OR v_take.available = v_rest, 'stock_deduct_merged: sum mismatch';\n"
    "            INSERT INTO inventory_flow\n"
    "            SELECT x.l, p_sku, x.q, 0, '', 0, v_take.taken, p_now, x.a\n"
    "              FROM unnest(p_lines, p_qtys, v_avail, v_codes) AS x(l, q, a, c) WHERE x.c = 0;\n"
    "        END IF;\n"
    "    END IF;\n"
    "    RETURN QUERY SELECT u.c, u.a FROM unnest(v_codes, v_avail) AS u(c, a);\n"
    "END $$;\n"
    "\n"
    "-- A run of deductions over any SKUs, merged: replays and conflicts first;\n"
    "-- then, for single-row SKUs, one set-based conditional update that takes\n"
    "-- each SKU's sum (leaved_amount >= sum) and one multi-row flow insert;\n"
    "-- SKUs whose sum does not fit, and bucketed SKUs, go through\n"
    "-- stock_deduct_merged one SKU at a time. Results in input order. The caller\n"
    "-- never passes the same line id twice. Line ids are looked up one by one\n"
    "-- (LATERAL ... LIMIT 1, which the planner cannot turn into a join): as a\n"
    "-- join, a plan made while the flow table was small hashed the whole table\n"
    "-- on every later call (PL/pgSQL keeps its plans), so each batch cost more.\n"
    "CREATE OR REPLACE FUNCTION stock_deduct_run(p_lines text[], p_skus text[], p_qtys bigint[],\n"
    "                                            p_now bigint, p_buckets integer)\n"
    "RETURNS TABLE(code integer, available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_count integer := cardinality(p_lines);\n"
    "    v_codes integer[] := array_fill(0, ARRAY[v_count]);\n"
    "    v_avail bigint[] := array_fill(0::bigint, ARRAY[v_count]);\n"
    "    v_done boolean[] := array_fill(false, ARRAY[v_count]);\n"
    "    v_row record;\n"
    "    v_sku text;\n"
    "BEGIN\n"
    "    FOR v_row IN SELECT x.n, x.s, x.q, f.sku_id, f.qty, f.order_id, f.available_after\n"
    "                   FROM unnest(p_lines, p_skus, p_qtys) WITH ORDINALITY AS x(line_id, s, q, n),\n"
    "                        LATERAL (SELECT * FROM inventory_flow g\n"
    "                                  WHERE g.line_id = x.line_id LIMIT 1) f LOOP\n"
    "        IF v_row.sku_id = v_row.s AND v_row.qty = v_row.q\n"
    "           AND v_row.order_id = '' THEN\n"
    "            v_codes[v_row.n] := 1;\n"
    "            v_avail[v_row.n] := v_row.available_after;\n"
    "        ELSE\n"
    "            v_codes[v_row.n] := 4;\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    IF p_buckets = 1 THEN\n"
    "        -- Each SKU carries its lines as arrays through the UPDATE, so that no\n"
    "        -- step joins the lines back to the SKUs (the planner, blind to the\n"
    "        -- size of unnest(), would nest that loop: quadratic).\n"
    "        WITH want AS (\n"
    "            SELECT x.s AS sku_id, sum(x.q)::bigint AS total,\n"
    "                   array_agg(x.n ORDER BY x.n) AS ns, array_agg(x.l ORDER BY x.n) AS ls,\n"
    "                   array_agg(x.q ORDER BY x.n) AS qs\n"
    "              FROM unnest(p_lines, p_skus, p_qtys, v_codes) WITH ORDINALITY AS x(l, s, q, c, n)\n"
    "             WHERE x.c = 0 GROUP BY x.s),\n"
    "        taken AS (\n"
    "            UPDATE inventory i SET leaved_amount = i.leaved_amount - w.total,\n"
    "                                   deducted = i.deducted + w.total\n"
    "              FROM want w\n"
    "             WHERE i.sku_id = w.sku_id AND i.bucket = 0 AND i.leaved_amount >= w.total\n"
    "               AND i.buckets = 1\n"
    "            RETURNING i.sku_id, i.leaved_amount + w.total AS before, w.ns, w.ls, w.qs),\n"
    "        line AS (\n"
    "            SELECT u.n, u.l, t.sku_id AS s, u.q,\n"
    "                   t.before - sum(u.q) OVER (PARTITION BY t.sku_id ORDER BY u.n) AS after\n"
    "              FROM taken t, unnest(t.ns, t.ls, t.qs) AS u(n, l, q)),\n"
    "        flow AS (\n"
    "            INSERT INTO inventory_flow\n"
    "            SELECT line.l, line.s, line.q, 0, '', 0, 0, p_now, line.after FROM line)\n"
    "        SELECT array_agg(coalesce(line.after, v.a) ORDER BY v.n),\n"
    "               array_agg(line.n IS NOT NULL ORDER BY v.n)\n"
    "          INTO v_avail, v_done\n"
    "          FROM unnest(v_avail) WITH ORDINALITY AS v(a, n) LEFT JOIN line ON line.n = v.n;\n"
    "    END IF;\n"
    "    FOR v_sku IN SELECT x.s FROM unnest(p_skus, v_codes, v_done) WITH ORDINALITY AS x(s, c, d, n)\n"
    "                  WHERE x.c = 0 AND NOT x.d GROUP BY x.s ORDER BY min(x.n) LOOP\n"
    "        FOR v_row IN\n"
    "            WITH mine AS (\n"
    "                SELECT x.n, x.l, x.q, row_number() OVER (ORDER BY x.n) AS k\n"
    "                  FROM unnest(p_lines, p_skus, p_qtys, v_codes) WITH ORDINALITY AS x(l, s, q, c, n)\n"
    "                 WHERE x.s = v_sku AND x.c = 0),\n"
    "            result AS (\n"
    "                SELECT m.code, m.available, row_number() OVER () AS k\n"
    "                  FROM stock_deduct_merged(v_sku,\n"
    "                         ARRAY(SELECT l FROM mine ORDER BY n),\n"
    "                         ARRAY(SELECT q FROM mine ORDER BY n), p_now, p_buckets) AS m)\n"
    "            SELECT mine.n, result.code, result.available\n"
    "              FROM mine JOIN result ON result.k = mine.k LOOP\n"
    "            v_codes[v_row.n] := v_row.code;\n"
    "            v_avail[v_row.n] := v_row.available;\n"
    "        END LOOP;\n"
    "    END LOOP;\n"
    "    RETURN QUERY SELECT u.c, u.a FROM unnest(v_codes, v_avail) AS u(c, a);\n"
    "END $$;\n"
    "\n"
    "-- A cart: replay or conflict of the order id; then the lines in order\n"
    "-- (reused line id, missing SKU: the first failure wins); then one\n"
    "-- conditional update per SKU for the sum of its lines, in order of first\n"
    "-- appearance, inside a subtransaction that rolls back every line when one\n"
    "-- SKU is short. failed_line is 0-based, -1 when no line is at fault.\n"
    "CREATE OR REPLACE FUNCTION stock_order(p_order text, p_lines text[], p_skus text[],\n"
    "                                       p_qtys bigint[], p_now bigint, p_buckets integer,\n"
    "                                       OUT code integer, OUT failed_line integer,\n"
    "                                       OUT available bigint, OUT availables bigint[])\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_count integer := cardinality(p_lines);\n"
    "    v_buckets integer[] := array_fill(0, ARRAY[v_count]);\n"
    "    v_known integer;\n"
    "    v_sku text;\n"
    "    v_want bigint;\n"
    "    v_rest bigint;\n"
    "    v_take record;\n"
    "    v_i integer;\n"
    "BEGIN\n"
    "    failed_line := -1;\n"
    "    SELECT line_count INTO v_known FROM inventory_orders WHERE order_id = p_order;\n"
    "    IF FOUND THEN\n"
    "        -- the same lines: found by their ids (the primary key), in place\n"
    "        availables := ARRAY(\n"
    "            SELECT f.available_after\n"
    "              FROM unnest(p_lines, p_skus, p_qtys) WITH ORDINALITY AS x(l, s, q, n),\n"
    "                   LATERAL (SELECT g.available_after FROM inventory_flow g\n"
    "                             WHERE g.line_id = x.l AND g.sku_id = x.s AND g.qty = x.q\n"
    "                               AND g.position = x.n - 1 AND g.order_id = p_order LIMIT 1) f\n"
    "             ORDER BY x.n);\n"
    "        IF v_known = v_count AND cardinality(availables) = v_count THEN\n"
    "            code := 1;\n"
    "        ELSE\n"
    "            code := 4;\n"
    "            availables := NULL;\n"
    "        END IF;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    FOR v_i IN 1..v_count LOOP\n"
    "        failed_line := v_i - 1;\n"
    "        IF EXISTS (SELECT 1 FROM inventory_flow WHERE line_id = p_lines[v_i]) THEN\n"
    "            code := 4;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "        IF NOT EXISTS (SELECT 1 FROM inventory WHERE sku_id = p_skus[v_i]) THEN\n"
    "            code := 3;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    failed_line := -1;\n"
    "    availables := array_fill(0::bigint, ARRAY[v_count]);\n"
    "    BEGIN\n"
    "        FOR v_sku IN SELECT x.s FROM unnest(p_skus) WITH ORDINALITY AS x(s, n)\n"
    "                      GROUP BY x.s ORDER BY min(x.n) LOOP\n"
    "            SELECT sum(x.q) INTO v_want FROM unnest(p_skus, p_qtys) AS x(s, q) WHERE x.s = v_sku;\n"
    "            v_take := stock_take(v_sku, v_want, p_buckets);\n"
    "            IF v_take.taken < 0 THEN\n"
    "                failed_line := array_position(p_skus, v_sku) - 1;\n"
    "                RAISE EXCEPTION USING ERRCODE = 'SO001';\n"
    "            END IF;\n"
    "            v_rest := v_take.available + v_want;\n"
    "            FOR v_i IN 1..v_count LOOP\n"
    "                IF p_skus[v_i] = v_sku THEN\n"
    "                    v_rest := v_rest - p_qtys[v_i];\n"
    "                    availables[v_i] := v_rest;\n"
    "                    v_buckets[v_i] := v_take.taken;\n"
    "                END IF;\n"
    "            END LOOP;\n"
    "        END LOOP;\n"
    "        INSERT INTO inventory_flow\n"
    "        SELECT x.l, x.s, x.q, 0, p_order, x.n - 1, x.b, p_now, x.a\n"
    "          FROM unnest(p_lines, p_skus, p_qtys, v_buckets, availables)\n"
    "               WITH ORDINALITY AS x(l, s, q, b, a, n);\n"
    "        INSERT INTO inventory_orders VALUES (p_order, v_count);\n"
    "        code := 0;\n"
    "    EXCEPTION WHEN SQLSTATE 'SO001' THEN\n"
    "        -- every line taken before the short SKU is rolled back with the subtransaction\n"
    "        code := 2;\n"
    "        availables := NULL;\n"
    "        available := stock_total(p_skus[failed_line + 1]);\n"
    "    END;\n"
    "END $$;\n"
    "\n"
    "-- Gives qty back to a line's SKU (to the bucket it came from), at most what\n"
    "-- is left to refund on the line, once per refund id.\n"
    "-- code: 0 OK, 1 REPLAY, 3 NOT_FOUND, 4 CONFLICT, 5 EXCEEDS (available =\n"
    "-- refundable), 7 INVALID (the level would overflow).\n"
    "CREATE OR REPLACE FUNCTION stock_refund(p_refund text, p_line text, p_qty bigint,\n"
    "                                        OUT code integer, OUT available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_refund record;\n"
    "    v_flow record;\n"
    "BEGIN\n"
    "    SELECT line_id, qty, inventory_refunds.available AS level INTO v_refund\n"
    "      FROM inventory_refunds WHERE refund_id = p_refund;\n"
    "    IF FOUND THEN\n"
    "        IF v_refund.line_id = p_line AND v_refund.qty = p_qty THEN\n"
    "            code := 1;\n"
    "            available := v_refund.level;\n"
    "        ELSE\n"
    "            code := 4;\n"
    "        END IF;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    SELECT sku_id, qty, refunded, bucket INTO v_flow\n"
    "      FROM inventory_flow WHERE line_id = p_line FOR UPDATE;\n"
    "    IF NOT FOUND THEN\n"
    "        code := 3;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_qty > v_flow.qty - v_flow.refunded THEN\n"
    "        code := 5;\n"
    "        available := v_flow.qty - v_flow.refunded;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    available := stock_total(v_flow.sku_id);\n"
    "    IF available > 9223372036854775807 - p_qty THEN\n"
    "        code := 7;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    UPDATE inventory_flow SET refunded = refunded + p_qty WHERE line_id = p_line;\n"
    "    UPDATE inventory SET leaved_amount = leaved_amount + p_qty, refunded = refunded + p_qty\n"
    "     WHERE sku_id = v_flow.sku_id AND bucket = v_flow.bucket;\n"
    "    available := available + p_qty;\n"
    "    INSERT INTO inventory_refunds VALUES (p_refund, p_line, p_qty, available);\n"
    "    code := 0;\n"
    "END $$;\n"
    "\n"
    "-- Creates a SKU over max(p_buckets, its rows) buckets or sets its level,\n"
    "-- spread evenly; the change is recorded in adjusted as a delta.\n"
    "-- code: 0 OK, 3 NOT_FOUND (expect on a missing SKU), 6 MISMATCH.\n"
    "CREATE OR REPLACE FUNCTION stock_set(p_sku text, p_level bigint, p_has_expect boolean,\n"
    "                                     p_expect bigint, p_buckets integer,\n"
    "                                     OUT code integer, OUT available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_rows integer;\n"
    "    v_split integer;\n"
    "    v_adjusted numeric;\n"
    "BEGIN\n"
    "    SELECT sum(t.leaved_amount)::bigint, sum(t.adjusted), count(*)\n"
    "      INTO available, v_adjusted, v_rows\n"
    "      FROM (SELECT leaved_amount, adjusted FROM inventory WHERE sku_id = p_sku\n"
    "             ORDER BY bucket FOR UPDATE) t;\n"
    "    IF v_rows = 0 AND p_has_expect THEN\n"
    "        code := 3;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_has_expect AND available <> p_expect THEN\n"
    "        code := 6;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF v_rows > 0 AND v_adjusted + p_level - available > 9223372036854775807 THEN\n"
    "        code := 7;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    v_split := greatest(v_rows, p_buckets);\n"
    "    INSERT INTO inventory AS v (sku_id, bucket, leaved_amount, adjusted, buckets)\n"
    "    SELECT p_sku, b, p_level / v_split + (b < p_level % v_split)::integer,\n"
    "           p_level / v_split + (b < p_level % v_split)::integer, v_split\n"
    "      FROM generate_series(0, v_split - 1) AS b\n"
    "    ON CONFLICT (sku_id, bucket) DO UPDATE\n"
    "       SET adjusted = v.adjusted + excluded.leaved_amount - v.leaved_amount,\n"
    "           leaved_amount = excluded.leaved_amount, buckets = excluded.buckets;\n"
    "    code := 0;\n"
    "    available := p_level;\n"
    "END $$;\n"
    "\n"
    "-- Restock (spread over the buckets) or write-off (taken bucket by bucket),\n"
    "-- once per adjustment id when one is given.\n"
    "-- code: 0 OK, 1 REPLAY, 2 INSUFFICIENT, 3 NOT_FOUND, 4 CONFLICT, 7 INVALID.\n"
    "CREATE OR REPLACE FUNCTION stock_add(p_sku text, p_delta bigint, p_id text,\n"
    "                                     OUT code integer, OUT available bigint)\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_adjust record;\n"
    "    v_rows integer;\n"
    "    v_rest bigint;\n"
    "    v_part bigint;\n"
    "    v_bucket integer;\n"
    "    v_adjusted numeric;\n"
    "BEGIN\n"
    "    IF p_id IS NOT NULL THEN\n"
    "        SELECT sku_id, delta, inventory_adjustments.available AS level INTO v_adjust\n"
    "          FROM inventory_adjustments WHERE adjust_id = p_id;\n"
    "        IF FOUND THEN\n"
    "            IF v_adjust.sku_id = p_sku AND v_adjust.delta = p_delta THEN\n"
    "                code := 1;\n"
    "                available := v_adjust.level;\n"
    "            ELSE\n"
    "                code := 4;\n"
    "            END IF;\n"
    "            RETURN;\n"
    "        END IF;\n"
    "    END IF;\n"
    "    SELECT sum(t.leaved_amount)::bigint, sum(t.adjusted), count(*)\n"
    "      INTO available, v_adjusted, v_rows\n"
    "      FROM (SELECT leaved_amount, adjusted FROM inventory WHERE sku_id = p_sku\n"
    "             ORDER BY bucket FOR UPDATE) t;\n"
    "    IF v_rows = 0 THEN\n"
    "        code := 3;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF available::numeric + p_delta > 9223372036854775807\n"
    "       OR v_adjusted + p_delta NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN\n"
    "        code := 7;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_delta < 0 AND available < -p_delta THEN\n"
    "        code := 2;\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_delta > 0 THEN\n"
    "        UPDATE inventory\n"
    "           SET leaved_amount = leaved_amount + p_delta / v_rows + (bucket < p_delta % v_rows)::integer,\n"
    "               adjusted = adjusted + p_delta / v_rows + (bucket < p_delta % v_rows)::integer\n"
    "         WHERE sku_id = p_sku;\n"
    "    ELSE\n"
    "        v_rest := -p_delta;\n"
    "        FOR v_bucket, v_part IN SELECT bucket, leaved_amount FROM inventory\n"
    "                                 WHERE sku_id = p_sku AND leaved_amount > 0 ORDER BY bucket LOOP\n"
    "            v_part := least(v_part, v_rest);\n"
    "            UPDATE inventory SET leaved_amount = leaved_amount - v_part, adjusted = adjusted - v_part\n"
    "             WHERE sku_id = p_sku AND bucket = v_bucket;\n"
    "            v_rest := v_rest - v_part;\n"
    "            EXIT WHEN v_rest = 0;\n"
    "        END LOOP;\n"
    "    END IF;\n"
    "    available := available + p_delta;\n"
    "    IF p_id IS NOT NULL THEN\n"
    "        INSERT INTO inventory_adjustments VALUES (p_id, p_sku, p_delta, available);\n"
    "    END IF;\n"
    "    code := 0;\n"
    "END $$;\n";

/* The statements the pipeline sends, by name (postgres.h). */
typedef struct pg_statement {
    const char *name;
    const char *sql;
    int param_count;
} pg_statement;

static const pg_statement pg_statements[] = {
    {PG_STMT_TOKEN,
     "INSERT INTO stock_clients VALUES ($1::bigint, $2::bigint) ON CONFLICT (client_id) "
     "DO UPDATE SET last_txn = excluded.last_txn", 2},
    {PG_STMT_SET, "SELECT code, available FROM stock_set($1, $2, $3, $4, $5)", 5},
    {PG_STMT_ADD, "SELECT code, available FROM stock_add($1, $2, $3)", 3},
    {PG_STMT_DEDUCT, "SELECT code, available FROM stock_deduct($1, $2, $3, $4, $5)", 5},
    {PG_STMT_MERGED, "SELECT code, available FROM stock_deduct_run($1, $2, $3, $4, $5)", 5},
    {PG_STMT_ORDER,
     "SELECT code, failed_line, available, availables FROM stock_order($1, $2, $3, $4, $5, $6)", 6},
    {PG_STMT_REFUND, "SELECT code, available FROM stock_refund($1, $2, $3)", 3},
    {PG_STMT_GET,
     "SELECT sum(leaved_amount)::bigint, sum(adjusted)::bigint, sum(deducted)::bigint, "
     "sum(refunded)::bigint FROM inventory WHERE sku_id = $1", 1},
    {PG_STMT_LINE,
     "SELECT sku_id, order_id, qty, refunded, time_us, available_after "
     "FROM inventory_flow WHERE line_id = $1", 1},
    {PG_STMT_LSN, "SELECT pg_current_wal_lsn()::text", 0},
    {PG_STMT_TOKEN_READ, "SELECT last_txn FROM stock_clients WHERE client_id = $1::bigint", 1},
};

/* Runs sql; on failure words the server's error into message. */
static bool exec_ok(PGconn *conn, const char *sql, ExecStatusType want,
                    PGresult **out, char *message, size_t size)
{
    PGresult *result = PQexec(conn, sql);
    bool ok = PQresultStatus(result) == want;
    if (!ok)
        message_set(message, size, "postgres schema: %s", PQerrorMessage(conn));
    if (ok && out != NULL)
        *out = result;
    else
        PQclear(result);
    return ok;
}

/* A digest of the schema text: a library whose functions differ from the
 * installed ones (same version, fixed function) replaces them. */
static void schema_digest(char *out, size_t size)
{
    uint64_t hash = 14695981039346656037ull;   /* FNV-1a */
    for (size_t i = 0; pg_schema_sql[i] != '\0'; i++)
        hash = (hash ^ (uint8_t)pg_schema_sql[i]) * 1099511628211ull;
    snprintf(out, size, "%016" PRIx64, hash);
}

/* Inside the locked transaction: the stored version (0 for a new database)
 * and whether its digest is ours. */
static stock_code read_version(PGconn *conn, int *version, bool *same, char *message,
                               size_t size)
{
    PGresult *result = NULL;
    char digest[24], sql[160];
    schema_digest(digest, sizeof digest);
    snprintf(sql, sizeof sql, "SELECT coalesce(max(version), 0), "
             "coalesce(bool_or(digest = '%s'), false) FROM stock_schema", digest);
    if (!exec_ok(conn, "CREATE TABLE IF NOT EXISTS stock_schema "
                 "(version integer NOT NULL, digest text NOT NULL)",
                 PGRES_COMMAND_OK, NULL, message, size) ||
        !exec_ok(conn, sql, PGRES_TUPLES_OK, &result, message, size))
        return STOCK_IO;
    assert(PQntuples(result) == 1);
    *version = atoi(PQgetvalue(result, 0, 0));
    *same = PQgetvalue(result, 0, 1)[0] == 't';
    PQclear(result);
    return STOCK_OK;
}

static stock_code migrate(PGconn *conn, char *message, size_t size)
{
    char sql[160], digest[24];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d)", PG_SCHEMA_LOCK_KEY);
    if (!exec_ok(conn, sql, PGRES_TUPLES_OK, NULL, message, size))
        return STOCK_IO;
    int version = 0;
    bool same = false;
    stock_code code = read_version(conn, &version, &same, message, size);
    if (code == STOCK_OK && version > PG_SCHEMA_VERSION) {
        snprintf(message, size, "postgres schema: the database has schema version %d, "
                 "newer than this library's %d; upgrade libstock", version, PG_SCHEMA_VERSION);
        code = STOCK_CORRUPT;
    }
    if (code == STOCK_OK && (version < PG_SCHEMA_VERSION || !same)) {
        /* Version 1 is the first: migrating from 0 creates everything, and
         * the script is idempotent (IF NOT EXISTS, CREATE OR REPLACE). A later
         * version adds its steps here, each from the one before. */
        schema_digest(digest, sizeof digest);
        snprintf(sql, sizeof sql, "DELETE FROM stock_schema; INSERT INTO stock_schema "
                 "VALUES (%d, '%s')", PG_SCHEMA_VERSION, digest);
        if (!exec_ok(conn, pg_schema_sql, PGRES_COMMAND_OK, NULL, message, size) ||
            !exec_ok(conn, sql, PGRES_COMMAND_OK, NULL, message, size))
            code = STOCK_IO;
    }
    const char *end = code == STOCK_OK ? "COMMIT" : "ROLLBACK";
    if (!exec_ok(conn, end, PGRES_COMMAND_OK, NULL, code == STOCK_OK ? message : NULL, size))
        code = code == STOCK_OK ? STOCK_IO : code;
    return code;
}

stock_code pg_schema_install(PGconn *conn, char *message, size_t size)
{
    assert(conn != NULL);
    assert(PQpipelineStatus(conn) == PQ_PIPELINE_OFF);
    stock_code code = migrate(conn, message, size);
    if (code != STOCK_OK)
        return code;
    for (size_t i = 0; i < sizeof pg_statements / sizeof pg_statements[0]; i++) {
        const pg_statement *statement = &pg_statements[i];
        PGresult *result = PQprepare(conn, statement->name, statement->sql,
                                     statement->param_count, NULL);
        bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
        PQclear(result);
        if (!ok) {
            snprintf(message, size, "postgres schema: preparing %s: %s", statement->name,
                     PQerrorMessage(conn));
            return STOCK_IO;
        }
    }
    return STOCK_OK;
}
