/*
 * File identity: what restore checks before it maps or opens a file the
 * image names. ELF files are identified by size and GNU build-id (mtime
 * changes with every package reinstall of the same build); other files by
 * size and mtime.
 */
#ifndef FERRY_CORE_FILEID_H
#define FERRY_CORE_FILEID_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/err.h"

struct file_ident {
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;
	uint8_t build_id[64];
	size_t build_id_len; /* 0: not an ELF file with a build-id */
};

/* Identity of an open file (fd is only read with pread). */
int fileid_of_fd(int fd, const char *name, struct file_ident *id, struct ferry_err *err);
int fileid_of_path(const char *path, struct file_ident *id, struct ferry_err *err);

/* Compare: 0 if the same, else an error naming what differs. */
int fileid_compare(const char *path, const struct file_ident *want, const struct file_ident *have,
		   struct ferry_err *err);

#endif
