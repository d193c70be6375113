/*
 * page-xfer to a page server (`ferry page-server`, docs/protocol.md).
 *
 * A session sends one process's page runs to the server, which writes them
 * as pagemap-PID.img and pages-PID.img into its own image directory named
 * like the last component of `dir`, linked to the parent directory named
 * like the last component of `parent_dir`. Nothing is visible on the server
 * before commit() returns 0; a session dropped before that leaves nothing.
 */
#ifndef FERRY_MEM_XFER_REMOTE_H
#define FERRY_MEM_XFER_REMOTE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"
#include "mem/xfer.h"

struct xfer_session {
	pid_t pid;                      /* names pagemap-PID.img on the server (the ns pid) */
	const char *snapshot_id;        /* the inventory's, or NULL */
	const char *parent_snapshot_id; /* the parent's, or NULL */
	const char *dir;                /* the image directory (a path: its last component is used) */
	const char *parent_dir;         /* the parent's, relative to dir as in --prev-images-dir; NULL: none */
	const char *auth_key;           /* --auth-key FILE, or NULL */
};

int xfer_remote_open(const char *addr, int port, const struct xfer_session *s,
		     struct page_xfer **x, struct ferry_err *err);

/* Does the server hold committed memory of s->pid in s->parent_dir (with
 * s->parent_snapshot_id when set)? For choosing an incremental pre-dump. */
int xfer_remote_parent_exists(const char *addr, int port, const struct xfer_session *s,
			      bool *exists, struct ferry_err *err);

#endif
