#include "core/image.h"

#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

static const struct {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
} kinds[] = {
	[IMG_INVENTORY] = {"inventory", &inventory__descriptor},
	[IMG_PSTREE] = {"pstree", &pstree__descriptor},
	[IMG_TASK] = {"task", &task_core__descriptor},
	[IMG_CORE] = {"core", &thread_core__descriptor},
	[IMG_MM] = {"mm", &mm__descriptor},
	[IMG_FDS] = {"fds", &fds__descriptor},
	[IMG_PAGEMAP] = {"pagemap", &pagemap__descriptor},
	[IMG_PAGES] = {"pages", NULL},
};

const char *img_kind_name(enum img_kind kind)
{
	if (kind < 1 || kind >= ARRAY_SIZE(kinds))
		return "unknown";
	return kinds[kind].name;
}

const ProtobufCMessageDescriptor *img_kind_desc(enum img_kind kind)
{
	if (kind < 1 || kind >= ARRAY_SIZE(kinds))
		return NULL;
	return kinds[kind].desc;
}

void img_name(char *buf, size_t size, const char *prefix, unsigned id)
{
	snprintf(buf, size, "%s-%u.img", prefix, id);
}

static void fill_hdr(struct img_hdr *h, enum img_kind kind, uint64_t len, uint64_t csum)
{
	memcpy(h->magic, FERRY_IMG_MAGIC, 8);
	h->version = htole32(FERRY_IMG_VERSION);
	h->kind = htole32(kind);
	h->len = htole64(len);
	h->csum = htole64(csum);
}

static bool img_durable = true;

void img_set_durable(bool on)
{
	img_durable = on;
}

bool img_is_durable(void)
{
	return img_durable;
}

int img_write(int dirfd, const char *name, enum img_kind kind, const ProtobufCMessage *msg,
	      struct ferry_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	_cleanup_free_ uint8_t *buf = malloc(FERRY_IMG_HDR_SIZE + len);
	_cleanup_close_ int fd = -1;
	int r;

	if (!buf)
		return ferry_fail(err, ENOMEM, "write image %s", name);
	protobuf_c_message_pack(msg, buf + FERRY_IMG_HDR_SIZE);
	fill_hdr((struct img_hdr *)buf, kind, len, XXH3_64bits(buf + FERRY_IMG_HDR_SIZE, len));
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferry_fail_errno(err, "create image %s", name);
	r = write_all(fd, buf, FERRY_IMG_HDR_SIZE + len);
	if (r == 0 && img_durable && fsync(fd) < 0)
		r = -errno;
	if (r < 0)
		return ferry_fail(err, -r, "write image %s", name);
	return 0;
}

static int check_hdr(const struct img_hdr *h, const char *name, struct ferry_err *err)
{
	if (memcmp(h->magic, FERRY_IMG_MAGIC, 8))
		return ferry_refuse(err, EINVAL, "image %s: bad magic, not a ferry image", name);
	if (le32toh(h->version) != FERRY_IMG_VERSION)
		return ferry_refuse(err, EINVAL,
				  "image %s: format version %u, this ferry reads version %u", name,
				  le32toh(h->version), FERRY_IMG_VERSION);
	return 0;
}

int img_decode(const uint8_t *data, size_t size, const char *name, enum img_kind *kind,
	       ProtobufCMessage **out, struct ferry_err *err)
{
	struct img_hdr h;
	uint64_t len;
	int r;

	*out = NULL;
	if (size < sizeof(h))
		return ferry_refuse(err, EINVAL, "image %s: truncated header (%zu bytes)", name, size);
	memcpy(&h, data, sizeof(h));
	r = check_hdr(&h, name, err);
	if (r < 0)
		return r;
	*kind = le32toh(h.kind);
	len = le64toh(h.len);
	if (*kind == IMG_PAGES)
		return 0;
	if (!img_kind_desc(*kind))
		return ferry_refuse(err, EINVAL, "image %s: unknown kind %u", name, *kind);
	if (len > FERRY_IMG_MAX_PAYLOAD || size != FERRY_IMG_HDR_SIZE + len)
		return ferry_refuse(err, EINVAL,
				    "image %s: truncated or padded (header says %llu payload bytes, "
				    "file has %zu)",
				    name, (unsigned long long)len, size - FERRY_IMG_HDR_SIZE);
	if (XXH3_64bits(data + FERRY_IMG_HDR_SIZE, len) != le64toh(h.csum))
		return ferry_refuse(err, EINVAL, "image %s: checksum mismatch, the image is corrupt",
				    name);
	*out = protobuf_c_message_unpack(img_kind_desc(*kind), NULL, len, data + FERRY_IMG_HDR_SIZE);
	if (!*out)
		return ferry_refuse(err, EINVAL, "image %s: cannot decode %s message", name,
				    img_kind_name(*kind));
	return 0;
}

int img_read_any(int dirfd, const char *name, enum img_kind *kind, ProtobufCMessage **out,
		 struct ferry_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = NULL;
	struct img_hdr h;
	struct stat st;
	int r;

	*out = NULL;
	if (fd < 0)
		return ferry_fail_errno(err, "open image %s", name);
	if (fstat(fd, &st) < 0)
		return ferry_fail_errno(err, "stat image %s", name);
	r = read_all(fd, &h, sizeof(h));
	if (r == -EIO)
		return ferry_refuse(err, EINVAL, "image %s: truncated header (%lld bytes)", name,
				    (long long)st.st_size);
	if (r < 0)
		return ferry_fail(err, -r, "read image %s", name);
	r = check_hdr(&h, name, err);
	if (r < 0)
		return r;
	if (le32toh(h.kind) == IMG_PAGES) { /* raw data: only the header is read */
		*kind = IMG_PAGES;
		return 0;
	}
	if ((uint64_t)st.st_size < sizeof(h) ||
	    (uint64_t)st.st_size > FERRY_IMG_HDR_SIZE + FERRY_IMG_MAX_PAYLOAD)
		return ferry_refuse(err, EINVAL, "image %s: %lld bytes, too large", name,
				    (long long)st.st_size);
	buf = malloc(st.st_size);
	if (!buf)
		return ferry_fail(err, ENOMEM, "read image %s", name);
	memcpy(buf, &h, sizeof(h)); /* the header is read already: only the rest */
	r = read_all(fd, buf + sizeof(h), st.st_size - sizeof(h));
	if (r < 0)
		return ferry_fail(err, r == -EIO ? EINVAL : -r, "read image %s", name);
	return img_decode(buf, st.st_size, name, kind, out, err);
}

int img_read(int dirfd, const char *name, enum img_kind kind, ProtobufCMessage **out,
	     struct ferry_err *err)
{
	enum img_kind got;
	int r = img_read_any(dirfd, name, &got, out, err);

	if (r < 0)
		return r;
	if (got != kind) {
		if (*out)
			protobuf_c_message_free_unpacked(*out, NULL);
		*out = NULL;
		return ferry_refuse(err, EINVAL, "image %s: holds a %s image, expected %s", name,
				  img_kind_name(got), img_kind_name(kind));
	}
	return 0;
}

int img_pages_write_hdr(int fd, uint64_t data_len, struct ferry_err *err)
{
	static uint8_t page[FERRY_PAGES_DATA_OFF];
	struct img_hdr h;
	int r;

	fill_hdr(&h, IMG_PAGES, data_len, 0);
	memcpy(page, &h, sizeof(h));
	r = pwrite_all(fd, page, sizeof(page), 0);
	if (r < 0)
		return ferry_fail(err, -r, "write pages header");
	return 0;
}

int img_pages_check_hdr(int fd, const char *name, uint64_t *data_len, struct ferry_err *err)
{
	struct img_hdr h;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return ferry_fail_errno(err, "stat %s", name);
	r = pread_all(fd, &h, sizeof(h), 0);
	if (r < 0)
		return ferry_refuse(err, EINVAL, "image %s: truncated header", name);
	r = check_hdr(&h, name, err);
	if (r < 0)
		return r;
	if (le32toh(h.kind) != IMG_PAGES)
		return ferry_refuse(err, EINVAL, "image %s: not a pages image", name);
	*data_len = le64toh(h.len);
	if ((uint64_t)st.st_size < FERRY_PAGES_DATA_OFF + *data_len)
		return ferry_refuse(err, EINVAL,
				  "image %s: truncated (%llu bytes of page data expected, %lld present)",
				  name, (unsigned long long)*data_len,
				  (long long)st.st_size - FERRY_PAGES_DATA_OFF);
	return 0;
}

/*
 * Watch dir itself once it exists, its parent until then; look after each
 * watch is in place, so that nothing published meanwhile is missed.
 */
int img_wait_complete(const char *dir, int timeout_ms, int cancel_fd, struct ferry_err *err)
{
	char inv[PATH_MAX], parent[PATH_MAX];
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000;
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), wd = -1;
	bool watching_dir = false;
	int r = 0;

	if (in < 0)
		return ferry_fail_errno(err, "wait for the images in %s: inotify", dir);
	snprintf(inv, sizeof(inv), "%s/inventory.img", dir);
	snprintf(parent, sizeof(parent), "%s", dir);
	dirname(parent);
	for (;;) {
		if (access(inv, F_OK) == 0)
			break;
		bool dir_there = access(dir, F_OK) == 0;
		if (wd < 0 || dir_there != watching_dir) {
			if (wd >= 0)
				inotify_rm_watch(in, wd);
			wd = inotify_add_watch(in, dir_there ? dir : parent,
					       IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
			if (wd < 0) {
				r = ferry_fail_errno(err, "wait for the images in %s: watch %s", dir,
						     dir_there ? dir : parent);
				break;
			}
			watching_dir = dir_there;
			continue; /* look again now that the watch is there */
		}
		uint64_t now = mono_ns();
		if (now >= deadline) {
			r = ferry_fail(err, ETIMEDOUT, "no complete image in %s after %d s", dir,
				       timeout_ms / 1000);
			break;
		}
		struct pollfd p[2] = {{in, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
		if (poll(p, cancel_fd >= 0 ? 2 : 1, (int)((deadline - now + 999999) / 1000000)) < 0 &&
		    errno != EINTR) {
			r = ferry_fail_errno(err, "wait for the images in %s", dir);
			break;
		}
		if (cancel_fd >= 0 && p[1].revents) {
			r = ferry_fail(err, ECANCELED, "waiting for the images in %s: given up",
				       dir);
			break;
		}
		char buf[4096];
		while (read(in, buf, sizeof(buf)) > 0)
			;
	}
	close(in);
	return r;
}
