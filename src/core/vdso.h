/*
 * vDSO symbols: "the same vDSO" means the same exported symbols at the same
 * offsets (and the same vvar layout), not the same bytes.
 */
#ifndef FERRY_CORE_VDSO_H
#define FERRY_CORE_VDSO_H

#include <stddef.h>
#include <stdint.h>

struct vdso_sym {
	char name[64];
	uint64_t offset;
};

/* Parse the dynamic symbols of a vDSO image held in buf. Returns the count or -EINVAL. */
int vdso_parse_syms(const uint8_t *buf, size_t len, struct vdso_sym *syms, int max);

/* This process's own [vvar], [vvar_vclock], [vdso] from /proc/self/maps (0 if absent). */
struct vdso_layout {
	uint64_t vvar_start, vvar_size;
	uint64_t vclock_start, vclock_size;
	uint64_t vdso_start, vdso_size;
};
int vdso_self_layout(struct vdso_layout *l);

#endif
