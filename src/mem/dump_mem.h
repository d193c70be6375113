/*
 * Dumping memory: classify the pages of each area and move their data into a
 * page-xfer sink in bounded chunks (a fixed 4 MiB buffer, whatever the
 * target's size).
 *
 * Private areas are scanned with PAGEMAP_SCAN: present or swapped pages are
 * saved, pages mapping the shared zero page become zero runs, pages of a
 * private file mapping still backed by the file are left to the file, absent
 * pages have no run. Shared objects (shmem, memfd) are read through
 * /proc/PID/map_files with SEEK_DATA/SEEK_HOLE, so pages the object holds but
 * this process never touched are saved too.
 */
#ifndef FERRY_MEM_DUMP_MEM_H
#define FERRY_MEM_DUMP_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "mem/xfer.h"

enum mem_area_kind {
	MA_PRIVATE_ANON,
	MA_PRIVATE_FILE,
	MA_SHARED_OBJ,
};

struct mem_area {
	uint64_t start, end;
	uint64_t pgoff; /* for MA_SHARED_OBJ: offset of start in the object */
	enum mem_area_kind kind;
};

struct mem_stats {
	uint64_t pages_scanned;
	uint64_t pages_written;
	uint64_t pages_zero;
	uint64_t pages_absent;
	uint64_t pages_in_parent;
	uint64_t bytes_written;
	uint64_t scan_ns;
};

/* Areas must be sorted by address and not overlap. */
int mem_dump_areas(pid_t pid, const struct mem_area *areas, size_t n, struct page_xfer *x,
		   struct mem_stats *st, struct ferry_err *err);

#endif
