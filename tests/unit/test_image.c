/*
 * Unit tests of src/core/image.c: a round trip through a fresh temporary
 * directory per test, then each kind of damage a reader must refuse, with the
 * message that tells the user what is wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "core/image.h"


static void write_inventory(int dirfd, const char *name)
{
	struct ferry_err err = {0};
	Inventory inv = INVENTORY__INIT;

	inv.format_version = FERRY_IMG_VERSION;
	inv.snapshot_id = "0123456789abcdef0123456789abcdef";
	inv.root_pid = 4242;
	inv.arch = "x86_64";
	inv.xfeatures = 0x2e7;
	inv.xsave_size = 2696;
	inv.dump_time_ns = 1700000000123456789ULL;
	inv.ferry_version = "0.1.0";
	inv.has_pre_dump = true;
	inv.pre_dump = true;
	if (img_write(dirfd, name, IMG_INVENTORY, &inv.base, &err) < 0)
		fail_msg("%s", err.msg);
}

static off_t file_size(int dirfd, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, name, &st, 0), 0);
	return st.st_size;
}

static void patch(int dirfd, const char *name, off_t off, const void *bytes, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

static void truncate_to(int dirfd, const char *name, off_t size)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

/* img_read must fail with -EINVAL, leave *out NULL and say `what`. */
static void assert_read_rejected(int dirfd, const char *name, enum img_kind kind, const char *what)
{
	struct ferry_err err = {0};
	ProtobufCMessage *msg = (void *)1;

	assert_int_equal(img_read(dirfd, name, kind, &msg, &err), -EINVAL);
	assert_null(msg);
	assert_msg_has(&err, name);
	assert_msg_has(&err, what);
}

static void inventory_round_trips_through_a_file(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	ProtobufCMessage *msg;
	Inventory *inv;

	write_inventory(t->fd, "inventory.img");
	if (img_read(t->fd, "inventory.img", IMG_INVENTORY, &msg, &err) < 0)
		fail_msg("%s", err.msg);
	inv = (Inventory *)msg;
	assert_int_equal(inv->format_version, FERRY_IMG_VERSION);
	assert_string_equal(inv->snapshot_id, "0123456789abcdef0123456789abcdef");
	assert_int_equal(inv->root_pid, 4242);
	assert_string_equal(inv->arch, "x86_64");
	assert_int_equal(inv->xfeatures, 0x2e7);
	assert_int_equal(inv->xsave_size, 2696);
	assert_int_equal(inv->dump_time_ns, 1700000000123456789ULL);
	assert_string_equal(inv->ferry_version, "0.1.0");
	assert_true(inv->has_pre_dump && inv->pre_dump);
	assert_false(inv->has_complete);
	assert_null(inv->parent_path);
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void image_header_is_little_endian_with_payload_length(void **state)
{
	struct tmpdir *t = *state;
	struct img_hdr h;
	int fd;

	write_inventory(t->fd, "inventory.img");
	fd = openat(t->fd, "inventory.img", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	close(fd);
	assert_memory_equal(h.magic, "FERRYIMG", 8);
	assert_int_equal(le32toh(h.version), FERRY_IMG_VERSION);
	assert_int_equal(le32toh(h.kind), IMG_INVENTORY);
	assert_int_equal(le64toh(h.len) + FERRY_IMG_HDR_SIZE, file_size(t->fd, "inventory.img"));
}

static void read_any_reports_the_kind_found(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	ProtobufCMessage *msg;
	enum img_kind kind = 0;

	write_inventory(t->fd, "inventory.img");
	if (img_read_any(t->fd, "inventory.img", &kind, &msg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(kind, IMG_INVENTORY);
	assert_ptr_equal(msg->descriptor, &inventory__descriptor);
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void truncated_payload_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	write_inventory(t->fd, "inventory.img");
	truncate_to(t->fd, "inventory.img", file_size(t->fd, "inventory.img") - 1);
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "truncated");
}

static void truncated_header_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	write_inventory(t->fd, "inventory.img");
	truncate_to(t->fd, "inventory.img", 20);
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "truncated header");
	truncate_to(t->fd, "inventory.img", 0);
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "truncated header");
}

static void trailing_bytes_are_rejected(void **state)
{
	struct tmpdir *t = *state;

	write_inventory(t->fd, "inventory.img");
	patch(t->fd, "inventory.img", file_size(t->fd, "inventory.img"), "x", 1);
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "padded");
}

static void flipped_payload_byte_fails_checksum(void **state)
{
	struct tmpdir *t = *state;
	off_t size;

	write_inventory(t->fd, "inventory.img");
	size = file_size(t->fd, "inventory.img");
	for (off_t off = FERRY_IMG_HDR_SIZE; off < size; off += 7) {
		int fd = openat(t->fd, "inventory.img", O_RDWR | O_CLOEXEC);
		unsigned char b;

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, off), 1);
		b ^= 0x01;
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
		close(fd);
		assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "checksum mismatch");
		write_inventory(t->fd, "inventory.img");
	}
}

static void wrong_magic_is_rejected(void **state)
{
	struct tmpdir *t = *state;

	write_inventory(t->fd, "inventory.img");
	patch(t->fd, "inventory.img", 0, "CRIUIMG!", 8);
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "bad magic");
}

static void newer_format_version_is_rejected(void **state)
{
	struct tmpdir *t = *state;
	uint32_t v = htole32(FERRY_IMG_VERSION + 1);
	char want[64];

	write_inventory(t->fd, "inventory.img");
	patch(t->fd, "inventory.img", offsetof(struct img_hdr, version), &v, sizeof(v));
	snprintf(want, sizeof(want), "format version %u", FERRY_IMG_VERSION + 1);
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, want);
}

static void wrong_kind_is_rejected_naming_both_kinds(void **state)
{
	struct tmpdir *t = *state;

	write_inventory(t->fd, "pstree.img");
	assert_read_rejected(t->fd, "pstree.img", IMG_PSTREE,
			     "holds a inventory image, expected pstree");
}

static void unknown_kind_is_rejected(void **state)
{
	struct tmpdir *t = *state;
	uint32_t kind = htole32(99);

	write_inventory(t->fd, "inventory.img");
	patch(t->fd, "inventory.img", offsetof(struct img_hdr, kind), &kind, sizeof(kind));
	assert_read_rejected(t->fd, "inventory.img", IMG_INVENTORY, "unknown kind 99");
}

static void missing_image_reports_enoent(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	ProtobufCMessage *msg;

	assert_int_equal(img_read(t->fd, "nothing.img", IMG_INVENTORY, &msg, &err), -ENOENT);
	assert_msg_has(&err, "nothing.img");
}

/* pages files */

static int create_pages(int dirfd, const char *name, uint64_t data_len)
{
	struct ferry_err err = {0};
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char *data;

	assert_true(fd >= 0);
	if (img_pages_write_hdr(fd, data_len, &err) < 0)
		fail_msg("%s", err.msg);
	data = malloc(data_len);
	assert_non_null(data);
	memset(data, 0xa5, data_len);
	assert_int_equal(pwrite(fd, data, data_len, FERRY_PAGES_DATA_OFF), (ssize_t)data_len);
	free(data);
	return fd;
}

static void pages_header_pads_to_a_page_and_checks_back(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	uint64_t len = 0;
	int fd = create_pages(t->fd, "pages-1.img", 3 * 4096);

	assert_int_equal(file_size(t->fd, "pages-1.img"), FERRY_PAGES_DATA_OFF + 3 * 4096);
	if (img_pages_check_hdr(fd, "pages-1.img", &len, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(len, 3 * 4096);
	close(fd);
}

static void pages_file_reads_as_pages_kind_without_message(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	ProtobufCMessage *msg = (void *)1;
	enum img_kind kind = 0;

	close(create_pages(t->fd, "pages-1.img", 4096));
	if (img_read_any(t->fd, "pages-1.img", &kind, &msg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(kind, IMG_PAGES);
	assert_null(msg);
}

static void truncated_pages_data_is_rejected(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	uint64_t len;
	int fd = create_pages(t->fd, "pages-1.img", 3 * 4096);

	assert_int_equal(ftruncate(fd, FERRY_PAGES_DATA_OFF + 2 * 4096), 0);
	assert_int_equal(img_pages_check_hdr(fd, "pages-1.img", &len, &err), -EINVAL);
	assert_msg_has(&err, "pages-1.img: truncated");
	assert_msg_has(&err, "12288 bytes of page data expected, 8192 present");
	close(fd);
}

static void truncated_pages_header_is_rejected(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	uint64_t len;
	int fd = create_pages(t->fd, "pages-1.img", 4096);

	assert_int_equal(ftruncate(fd, 16), 0);
	assert_int_equal(img_pages_check_hdr(fd, "pages-1.img", &len, &err), -EINVAL);
	assert_msg_has(&err, "truncated header");
	close(fd);
}

static void pages_check_rejects_other_kinds_and_bad_magic(void **state)
{
	struct tmpdir *t = *state;
	struct ferry_err err = {0};
	uint64_t len;
	int fd;

	write_inventory(t->fd, "inventory.img");
	fd = openat(t->fd, "inventory.img", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(img_pages_check_hdr(fd, "inventory.img", &len, &err), -EINVAL);
	assert_msg_has(&err, "not a pages image");
	close(fd);

	fd = create_pages(t->fd, "pages-1.img", 4096);
	assert_int_equal(pwrite(fd, "XXXXXXXX", 8, 0), 8);
	assert_int_equal(img_pages_check_hdr(fd, "pages-1.img", &len, &err), -EINVAL);
	assert_msg_has(&err, "bad magic");
	close(fd);
}

static void image_names_carry_prefix_and_id(void **state)
{
	char buf[32];

	img_name(buf, sizeof(buf), "pagemap", 4242);
	assert_string_equal(buf, "pagemap-4242.img");
	assert_string_equal(img_kind_name(IMG_PAGES), "pages");
	assert_string_equal(img_kind_name(0), "unknown");
	assert_null(img_kind_desc(IMG_PAGES));
}


int main(void)
{
	const struct CMUnitTest tests[] = {
	    TMP_TEST(inventory_round_trips_through_a_file),
	    TMP_TEST(image_header_is_little_endian_with_payload_length),
	    TMP_TEST(read_any_reports_the_kind_found),
	    TMP_TEST(truncated_payload_is_rejected),
	    TMP_TEST(truncated_header_is_rejected),
	    TMP_TEST(trailing_bytes_are_rejected),
	    TMP_TEST(flipped_payload_byte_fails_checksum),
	    TMP_TEST(wrong_magic_is_rejected),
	    TMP_TEST(newer_format_version_is_rejected),
	    TMP_TEST(wrong_kind_is_rejected_naming_both_kinds),
	    TMP_TEST(unknown_kind_is_rejected),
	    TMP_TEST(missing_image_reports_enoent),
	    TMP_TEST(pages_header_pads_to_a_page_and_checks_back),
	    TMP_TEST(pages_file_reads_as_pages_kind_without_message),
	    TMP_TEST(truncated_pages_data_is_rejected),
	    TMP_TEST(truncated_pages_header_is_rejected),
	    TMP_TEST(pages_check_rejects_other_kinds_and_bad_magic),
	    cmocka_unit_test(image_names_carry_prefix_and_id),
	};

	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
