/*
 * The page server: receives dumps and pre-dumps over the page-server
 * protocol (docs/protocol.md) and writes each session's pages as
 * DIR/<name>/pagemap-PID.img + pages-PID.img, the local image format.
 *
 * One thread per connection; sessions run one after another on a connection
 * and at the same time on different ones. A session works in a hidden
 * directory DIR/.ferry-ps-* and becomes visible only at its commit. Holes
 * are checked against the parent's pagemap held here. A bad or vanished
 * peer costs one log line and its connection, nothing else.
 */
#ifndef FERRY_NET_PAGE_SERVER_H
#define FERRY_NET_PAGE_SERVER_H

#include <signal.h>

#include "core/err.h"

struct ps_opts {
	const char *dir;       /* -D: the image directories live here */
	const char *address;   /* NULL: every address */
	int port;
	const char *auth_key;  /* NULL: no authentication */
};

struct page_server;

/* Open DIR (created if needed), load the key, remove stale work directories, listen. */
int ps_open(const struct ps_opts *o, struct page_server **ps, struct ferry_err *err);
/* Serve until *stop is set (by a signal handler); then drop live sessions. */
int ps_serve(struct page_server *ps, volatile sig_atomic_t *stop, struct ferry_err *err);
void ps_close(struct page_server *ps);

#endif
