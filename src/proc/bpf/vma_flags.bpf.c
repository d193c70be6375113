/*
 * A task_vma iterator that writes, for each mapping of the task it is
 * attached to, three little-endian u64s: start, end and the kernel's vm_flags.
 * Reading it is a walk over the VMA tree only: unlike /proc/PID/smaps, no page
 * table is visited, so it costs microseconds whatever the process's size.
 *
 * Only the fields used are declared; CO-RE relocations (preserve_access_index)
 * find them in the running kernel's BTF, so no vmlinux.h is needed.
 */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#include <bpf/bpf_helpers.h>

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_flags;
} __attribute__((preserve_access_index));

struct bpf_iter__task_vma {
	struct bpf_iter_meta *meta;
	struct vm_area_struct *vma;
} __attribute__((preserve_access_index));

SEC("iter/task_vma")
int ferry_vma_flags(struct bpf_iter__task_vma *ctx)
{
	struct vm_area_struct *vma = ctx->vma;
	__u64 rec[3];

	if (!vma)
		return 0;
	rec[0] = vma->vm_start;
	rec[1] = vma->vm_end;
	rec[2] = vma->vm_flags;
	bpf_seq_write(ctx->meta->seq, rec, sizeof(rec));
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
