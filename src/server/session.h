/*
 * session.h -- the Redis session commands stockd keeps so that redis-cli,
 * redis-benchmark and client libraries work unmodified: PING, ECHO, QUIT,
 * HELLO, AUTH, SELECT, CLIENT, COMMAND, CONFIG GET, INFO, and stockd's own
 * STOCKPROTO. Each is a commands_handler (see commands.h) that replies at
 * once; none touches the store.
 */
#ifndef STOCK_SERVER_SESSION_H
#define STOCK_SERVER_SESSION_H

#include "server/commands.h"

void session_ping(conn *c, const resp_request *request);
void session_echo(conn *c, const resp_request *request);
void session_quit(conn *c, const resp_request *request);
void session_hello(conn *c, const resp_request *request);
void session_auth(conn *c, const resp_request *request);
void session_select(conn *c, const resp_request *request);
void session_client(conn *c, const resp_request *request);
void session_command(conn *c, const resp_request *request);
void session_config(conn *c, const resp_request *request);
void session_info(conn *c, const resp_request *request);
void session_stockproto(conn *c, const resp_request *request);

#endif /* STOCK_SERVER_SESSION_H */
