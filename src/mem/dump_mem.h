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
#include "core/image.h"
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
	bool rearm;     /* registered for async write-protection: the scan protects again */
	bool holes;     /* tracked since the parent round: unwritten present pages are holes */
};

/* What to save, decided while the target is frozen; the data may be read later. */
struct plan_run {
	uint64_t vaddr, nr_pages;
	uint32_t flags;
};

struct mem_plan {
	struct plan_run *runs;
	size_t n, cap;
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

/*
 * Classify the pages of the areas (sorted, not overlapping). parent, if not
 * NULL, is the parent round's pagemap: every hole must be covered there.
 */
int mem_plan_areas(pid_t pid, const struct mem_area *areas, size_t n, const Pagemap *parent,
		   struct mem_plan *plan, struct mem_stats *st, struct ferry_err *err);

/*
 * Send the planned runs and their data to x. With target_runs (pre-dump), a
 * page that vanished since the plan was made is sent as zeros: the next
 * round sees it absent and records that.
 */
int mem_transfer(pid_t pid, const struct mem_plan *plan, bool target_runs, struct page_xfer *x,
		 struct mem_stats *st, struct ferry_err *err);

void mem_plan_free(struct mem_plan *plan);

/* Does the pagemap cover [vaddr, vaddr + len) with data (present, in parent or zero)? */
bool pagemap_covers(const Pagemap *pm, uint64_t vaddr, uint64_t len);

#endif
