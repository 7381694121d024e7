/*
 * backup.h -- the RESP BACKUP command (docs/protocol.md): an online backup
 * of the server's store, copied off the loop thread so that the server
 * goes on answering every other request meanwhile.
 */
#ifndef STOCK_SERVER_BACKUP_H
#define STOCK_SERVER_BACKUP_H

#include "proto/resp.h"
#include "server/conn.h"

/* BACKUP dest: starts stock_backup into dest on libuv's thread pool and
 * answers c once it is done, in c's reply order; a second BACKUP while one
 * runs answers -BUSY at once. The arity is checked. */
void backup_resp(conn *c, const resp_request *request);

#endif /* STOCK_SERVER_BACKUP_H */
