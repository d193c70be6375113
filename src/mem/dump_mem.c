#include "mem/dump_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/image.h"
#include "core/log.h"
#include "core/util.h"
#include "mem/kapi.h"

#define DUMP_BUF_SIZE (4UL << 20)
#define SCAN_VEC 512
#define BATCH_IOV 1024

/* A batch of present pieces waiting to be read into the buffer and sent. */
struct batch {
	pid_t pid;
	int mem_fd;
	uint8_t *buf;
	size_t used;
	struct iovec remote[BATCH_IOV];
	size_t n;
	struct page_xfer *x;
	struct mem_stats *st;
};

static int batch_flush(struct batch *b, struct ferry_err *err)
{
	struct iovec local = {b->buf, b->used};
	ssize_t got;
	int r;

	if (!b->n)
		return 0;
	got = process_vm_readv(b->pid, &local, 1, b->remote, b->n, 0);
	if (got < 0)
		got = 0;
	if ((size_t)got < b->used) {
		/* Unreadable pages (PROT_NONE, ...): go through /proc/PID/mem for the rest. */
		size_t done = 0;
		for (size_t i = 0; i < b->n; i++) {
			size_t len = b->remote[i].iov_len;
			if (done + len > (size_t)got) {
				size_t skip = done >= (size_t)got ? 0 : got - done;
				r = pread_all(b->mem_fd, b->buf + done + skip, len - skip,
					      (uint64_t)b->remote[i].iov_base + skip);
				if (r < 0)
					return ferry_fail(err, -r, "pid %d: read memory at %p", b->pid,
							  b->remote[i].iov_base);
			}
			done += len;
		}
	}
	r = xfer_write(b->x, b->buf, b->used, err);
	if (r < 0)
		return r;
	b->st->bytes_written += b->used;
	b->used = 0;
	b->n = 0;
	return 0;
}

/* Queue [addr, addr+len) as present data. */
static int batch_add(struct batch *b, uint64_t addr, uint64_t len, struct ferry_err *err)
{
	while (len) {
		if (b->used == DUMP_BUF_SIZE || b->n == BATCH_IOV) {
			int r = batch_flush(b, err);
			if (r < 0)
				return r;
		}
		uint64_t take = len < DUMP_BUF_SIZE - b->used ? len : DUMP_BUF_SIZE - b->used;
		int r = xfer_add_run(b->x, addr, take / PAGE_SIZE, FERRY_PR_PRESENT, err);
		if (r < 0)
			return r;
		b->remote[b->n].iov_base = (void *)addr;
		b->remote[b->n].iov_len = take;
		b->n++;
		b->used += take;
		b->st->pages_written += take / PAGE_SIZE;
		addr += take;
		len -= take;
	}
	return 0;
}

static int dump_private(struct batch *b, int pagemap_fd, const struct mem_area *a,
			struct ferry_err *err)
{
	struct page_region vec[SCAN_VEC];
	uint64_t pos = a->start;

	while (pos < a->end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = pos,
			.end = a->end,
			.vec = (uintptr_t)vec,
			.vec_len = SCAN_VEC,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE |
				       PAGE_IS_PFNZERO,
		};
		uint64_t t0 = mono_ns();
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		b->st->scan_ns += mono_ns() - t0;
		if (n < 0)
			return ferry_fail_errno(err, "pid %d: scan pages %#lx-%#lx", b->pid,
						(unsigned long)pos, (unsigned long)a->end);
		for (long i = 0; i < n; i++) {
			uint64_t len = vec[i].end - vec[i].start;
			uint64_t cat = vec[i].categories;
			int r = 0;

			if (cat & PAGE_IS_PFNZERO) {
				r = xfer_add_run(b->x, vec[i].start, len / PAGE_SIZE, FERRY_PR_ZERO,
						 err);
				b->st->pages_zero += len / PAGE_SIZE;
			} else if (a->kind == MA_PRIVATE_FILE && (cat & PAGE_IS_FILE) &&
				   !(cat & PAGE_IS_SWAPPED)) {
				/* still the file's page: the mapping provides it at restore */
			} else {
				r = batch_add(b, vec[i].start, len, err);
			}
			if (r < 0)
				return r;
		}
		if (arg.walk_end <= pos)
			return ferry_fail(err, EIO, "pid %d: page scan made no progress at %#lx",
					  b->pid, (unsigned long)pos);
		pos = arg.walk_end;
	}
	return 0;
}

static int flush_then_read(struct batch *b, int fd, const struct mem_area *a, uint64_t off,
			   uint64_t len, struct ferry_err *err)
{
	uint64_t vaddr = a->start + (off - a->pgoff);

	while (len) {
		int r = batch_flush(b, err);
		if (r < 0)
			return r;
		uint64_t take = len < DUMP_BUF_SIZE ? len : DUMP_BUF_SIZE;
		r = xfer_add_run(b->x, vaddr, take / PAGE_SIZE, FERRY_PR_PRESENT, err);
		if (r < 0)
			return r;
		r = pread_all(fd, b->buf, take, off);
		if (r < 0)
			return ferry_fail(err, -r, "pid %d: read shared memory %#lx", b->pid,
					  (unsigned long)vaddr);
		r = xfer_write(b->x, b->buf, take, err);
		if (r < 0)
			return r;
		b->st->pages_written += take / PAGE_SIZE;
		b->st->bytes_written += take;
		vaddr += take;
		off += take;
		len -= take;
	}
	return 0;
}

static int dump_shared(struct batch *b, const struct mem_area *a, struct ferry_err *err)
{
	char path[96];
	uint64_t end = a->pgoff + (a->end - a->start);
	uint64_t off = a->pgoff;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", b->pid, (unsigned long)a->start,
		 (unsigned long)a->end);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferry_fail_errno(err, "open %s", path);
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			return ferry_fail_errno(err, "seek data in %s", path);
		}
		if ((uint64_t)data >= end)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return ferry_fail_errno(err, "seek hole in %s", path);
		uint64_t stop = (uint64_t)hole < end ? (uint64_t)hole : end;
		data = PAGE_ALIGN_DOWN(data);
		stop = PAGE_ALIGN_UP(stop);
		int r = flush_then_read(b, fd, a, data, stop - data, err);
		if (r < 0)
			return r;
		off = stop;
	}
	return 0;
}

int mem_dump_areas(pid_t pid, const struct mem_area *areas, size_t n, struct page_xfer *x,
		   struct mem_stats *st, struct ferry_err *err)
{
	char path[64];
	struct batch *b;
	int r = 0;

	b = calloc(1, sizeof(*b));
	if (!b)
		return ferry_fail(err, ENOMEM, "dump buffer");
	b->pid = pid;
	b->x = x;
	b->st = st;
	b->mem_fd = -1;
	b->buf = malloc(DUMP_BUF_SIZE);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	_cleanup_close_ int pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	b->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!b->buf)
		r = ferry_fail(err, ENOMEM, "dump buffer");
	else if (pagemap_fd < 0 || b->mem_fd < 0)
		r = ferry_fail_errno(err, "open /proc/%d/pagemap and mem", pid);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct mem_area *a = &areas[i];
		uint64_t before = st->pages_written + st->pages_zero;

		st->pages_scanned += (a->end - a->start) / PAGE_SIZE;
		if (a->kind == MA_SHARED_OBJ)
			r = batch_flush(b, err) ?: dump_shared(b, a, err);
		else
			r = dump_private(b, pagemap_fd, a, err);
		if (r == 0) {
			uint64_t saved = st->pages_written + st->pages_zero - before;
			st->pages_absent += (a->end - a->start) / PAGE_SIZE - saved;
		}
	}
	if (r == 0)
		r = batch_flush(b, err);
	if (b->mem_fd >= 0)
		close(b->mem_fd);
	free(b->buf);
	free(b);
	return r;
}
