/*
 * Post-copy (lazy pages).
 *
 * Source side: the dump leaves the private anonymous pages of the frozen
 * process as LAZY runs and serves them with lazy_serve_process() over the
 * page-server protocol's pull sessions (docs/protocol.md); an image
 * directory on disk can be served the same way (lazy_serve_images).
 *
 * Destination side: the lazy-pages daemon (lazy_daemon) listens on
 * DIR/lazy-pages.sock; `restore --lazy-pages` hands it the userfaultfd of the
 * restored process (made inside it, registered over its private anonymous
 * mappings) and the page under its stack pointer, waits for "installed", lets
 * the process run and reports "running". The daemon answers faults first
 * (urgent requests on their own connection), pulls the rest in the
 * background nearest to the last fault first with a growing window, follows
 * fork, mremap, munmap and madvise(DONTNEED), and when every page has
 * arrived closes the session (the source then kills its frozen copy).
 *
 * A guardian process holds a copy of every userfaultfd: if the daemon dies
 * before all pages arrived, it kills the restored processes rather than let
 * them run on zero-filled memory.
 */
#ifndef FERRY_LAZY_H
#define FERRY_LAZY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "infect/infect.h"

struct lazy_src_opts {
	const char *address; /* NULL: every address */
	int port;
	const char *auth_key;
	int ready_fd;        /* written once listening (-1: none) */
	int listen_fd;       /* already listening (-1: listen on address/port) */
	const char *snapshot_id; /* a client must name it (OPEN), NULL: any */
};

/* Listen early (before the images are published) for lazy_serve_*. */
int lazy_listen(const struct lazy_src_opts *o, int *fd, struct ferry_err *err);

/*
 * Serve the pages of a frozen, seized process until the destination has all
 * of them. *committed tells whether the destination committed (then the
 * caller kills the source; otherwise it resumes it).
 */
int lazy_serve_process(struct infect *ic, pid_t ns_pid, const struct lazy_src_opts *o,
		       bool *committed, struct ferry_err *err);

/* Serve the pages of an image directory (no process). Returns when the client is done. */
int lazy_serve_images(const char *dir, const struct lazy_src_opts *o, struct ferry_err *err);

struct lazy_daemon_opts {
	const char *dir;      /* the image directory (its pagemap tells what is lazy) */
	bool remote;          /* pages from a source over TCP, else from dir itself */
	const char *address;
	int port;
	const char *auth_key;
	int ready_fd;         /* written once the socket listens (-1: none) */
	int client_fd;        /* a socket to the restore, instead of listening on
				 DIR/lazy-pages.sock (-1: listen) */
	int prefetch_after_ms; /* background transfer starts this long after the process runs */
	int wait_images_ms;   /* wait this long for dir to be complete (0: it is) */
};

int lazy_daemon(const struct lazy_daemon_opts *o, struct ferry_err *err);

/* restore --lazy-pages: talk to the daemon of dir. */
struct lazy_client {
	int fd;
};
int lazy_client_connect(const char *dir, struct lazy_client *c, struct ferry_err *err);
/*
 * restore --lazy-pages --page-server: start the daemon (o) as a child of its
 * own, already connected to c; it runs on after the restore returns.
 */
int lazy_client_spawn(const struct lazy_daemon_opts *o, struct lazy_client *c,
		      struct ferry_err *err);
int lazy_client_handover(void *ctx, int uffd, pid_t pid, uint64_t sp_page, struct ferry_err *err);
int lazy_client_running(struct lazy_client *c, pid_t pid, struct ferry_err *err);

#endif
