/*
 * Dirty tracking between pre-dump rounds.
 *
 * Backend "uffd-wp": a userfaultfd made inside the target (it binds to the
 * caller's mm), with UFFD_FEATURE_WP_ASYNC and WP_UNPOPULATED: registered
 * ranges are write-protected, a write just clears the protection of its page
 * (no fault reaches anyone), and PAGEMAP_SCAN with PM_SCAN_WP_MATCHING reads
 * which pages were written (PAGE_IS_WRITTEN) and protects them again in one
 * pass. The uffd is taken out of the target with pidfd_getfd and held by the
 * keeper (keeper.h) between rounds; only ferry's copies exist.
 *
 * Backend "none": no tracking; every round copies everything, announced.
 * (Soft-dirty is not offered: this kernel accepts clear_refs 4 and ignores it.)
 */
#ifndef FERRY_MEM_DIRTY_H
#define FERRY_MEM_DIRTY_H

#include <stdint.h>

#include "core/err.h"
#include "infect/infect.h"

/* Create a WP-async userfaultfd inside the stopped target; *uffd is ferry's copy. */
int uffd_wp_create(struct infect *ic, int *uffd, struct ferry_err *err);

/* Register [start, end) for async write-protection (-EINVAL: this kind of mapping cannot be). */
int uffd_wp_register(int uffd, uint64_t start, uint64_t end, struct ferry_err *err);

/* Write-protect [start, end): from now on, writes there are tracked. */
int uffd_wp_protect(int uffd, uint64_t start, uint64_t end, struct ferry_err *err);

#endif
