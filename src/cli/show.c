/*
 * ferry show DIR|FILE [--json]: decode images.
 *
 * For a directory, every *.img file in it is read (inventory first, then
 * pstree, task, core, mm, fds, pagemap, pages, each in pid order). Text mode
 * prints a summary (the inventory with its dump statistics, one line per
 * image) and then every field of every image; --json prints one object
 * {"dir": ..., "images": {NAME: MESSAGE, ...}}. An image that cannot be read
 * is reported on stderr and as {"error": ...}, the others are still shown,
 * and the exit status is 1.
 *
 * For a file, that image alone: its summary and fields, or the bare message
 * with --json. Pages files hold raw data, so only their size is shown.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/image.h"
#include "core/pbprint.h"
#include "core/util.h"

static const char show_help[] =
    "usage: ferry show DIR|FILE [--json] [-v N] [-o LOG]\n"
    "       ferry show -D DIR [--json]\n"
    "\n"
    "Decode ferry images. For an image directory: a summary (snapshot id,\n"
    "parent, pid, dump time, dump statistics, one line per image), then every\n"
    "field of every *.img file in it. For one image file: that image.\n"
    "\n"
    "  -D, --images-dir DIR  the image directory (instead of the argument)\n"
    "      --json            one JSON object instead of text:\n"
    "                        {\"dir\": DIR, \"images\": {\"inventory.img\": {...}, ...}}\n"
    "                        for a directory, the decoded message for a file.\n"
    "                        Bytes are hex strings, integers are numbers.\n"
    "  -v N                  log level 0..4\n"
    "  -o FILE               log to FILE\n"
    "\n"
    "Exit status: 0 if every image was read, 1 if one was not, 2 on bad usage.\n";

struct shown_image {
	char *name;
	enum img_kind kind;
	ProtobufCMessage *msg; /* NULL for pages files and unreadable images */
	uint64_t pages_len;    /* pages files: bytes of page data */
	off_t file_size;
	char *error; /* why the image could not be read, NULL if it was */
};

/* Read one image: the message, or for a pages file its checked header. */
static int load_image(int dirfd, const char *name, struct shown_image *img, struct ferry_err *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	r = img_read_any(dirfd, name, &img->kind, &img->msg, err);
	if (r < 0)
		return r;
	if (fstatat(dirfd, name, &st, 0) == 0)
		img->file_size = st.st_size;
	if (img->kind != IMG_PAGES)
		return 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferry_fail_errno(err, "open image %s", name);
	return img_pages_check_hdr(fd, name, &img->pages_len, err);
}

static void free_image(struct shown_image *img)
{
	if (img->msg)
		protobuf_c_message_free_unpacked(img->msg, NULL);
	free(img->name);
	free(img->error);
}

/* Kinds in the order a reader wants them; unknown names sort last. */
static int name_rank(const char *name)
{
	static const char *const order[] = {"inventory", "pstree", "task",    "core",
					    "mm",	 "fds",	   "pagemap", "pages"};

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		size_t n = strlen(order[i]);
		if (!strncmp(name, order[i], n) && (name[n] == '.' || name[n] == '-'))
			return i;
	}
	return ARRAY_SIZE(order);
}

static bool is_inventory(const char *name)
{
	return !strcmp(name, "inventory.img");
}

static int cmp_names(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	int d = name_rank(x) - name_rank(y);

	if (is_inventory(x) != is_inventory(y))
		return is_inventory(x) ? -1 : 1;

	/* strverscmp: task-9.img before task-10.img */
	return d ? d : strverscmp(x, y);
}

static bool is_image_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && !strcmp(name + n - 4, ".img");
}

/* The sorted names of the regular *.img files in dirfd. */
static int list_images(int dirfd, const char *dir, char ***names, size_t *count,
		       struct ferry_err *err)
{
	_cleanup_closedir_ DIR *d = NULL;
	char **list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int dupfd = dup(dirfd);

	if (dupfd < 0 || !(d = fdopendir(dupfd))) {
		if (dupfd >= 0)
			close(dupfd);
		return ferry_fail_errno(err, "read directory %s", dir);
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;

		if (!is_image_name(de->d_name) || fstatat(dirfd, de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **grown = realloc(list, (cap = cap ? 2 * cap : 16) * sizeof(*list));
			if (!grown)
				goto nomem;
			list = grown;
		}
		if (!(list[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	if (errno) {
		int e = errno;
		while (n)
			free(list[--n]);
		free(list);
		return ferry_fail(err, e, "read directory %s", dir);
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_names);
	*names = list;
	*count = n;
	return 0;
nomem:
	while (n)
		free(list[--n]);
	free(list);
	return ferry_fail(err, ENOMEM, "read directory %s", dir);
}

/* "1 file", "2 files" */
static void put_count(FILE *f, uint64_t n, const char *one, const char *many)
{
	fprintf(f, "%" PRIu64 " %s", n, n == 1 ? one : many);
}

static void put_size(FILE *f, uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = bytes;
	int u = -1;

	fprintf(f, "%" PRIu64 " bytes", bytes);
	if (bytes < 1024)
		return;
	while (v >= 1024 && u < (int)ARRAY_SIZE(units) - 1) {
		v /= 1024;
		u++;
	}
	fprintf(f, " (%.1f %s)", v, units[u]);
}

static void put_ms(FILE *f, uint64_t ns)
{
	fprintf(f, "%" PRIu64 ".%03" PRIu64 " ms", ns / 1000000, ns / 1000 % 1000);
}

static void put_realtime(FILE *f, uint64_t ns)
{
	time_t secs = ns / 1000000000;
	char buf[64];
	struct tm tm;

	if (!gmtime_r(&secs, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm)) {
		fprintf(f, "%" PRIu64 " ns since the epoch", ns);
		return;
	}
	fprintf(f, "%s.%03" PRIu64 " UTC", buf, ns / 1000000 % 1000);
}

/* "N label" for each present counter, comma-separated; returns how many were printed. */
static int put_counter(FILE *f, int printed, bool has, uint64_t v, const char *label)
{
	if (!has)
		return printed;
	fprintf(f, "%s%" PRIu64 " %s", printed ? ", " : "", v, label);
	return printed + 1;
}

static void show_stats(FILE *f, const DumpStats *s)
{
	int n = 0;

	if (!s) {
		fprintf(f, "  stats      none recorded\n");
		return;
	}
	if (s->has_frozen_ns || s->has_total_ns || s->has_scan_ns) {
		fputs("  frozen     ", f);
		if (s->has_frozen_ns)
			put_ms(f, s->frozen_ns);
		else
			fputs("?", f);
		if (s->has_total_ns) {
			fputs(", dump took ", f);
			put_ms(f, s->total_ns);
		}
		if (s->has_scan_ns) {
			fputs(", page scan ", f);
			put_ms(f, s->scan_ns);
		}
		fputc('\n', f);
	}
	fputs("  pages      ", f);
	n = put_counter(f, n, s->has_pages_written, s->pages_written, "written");
	n = put_counter(f, n, s->has_pages_zero, s->pages_zero, "zero");
	n = put_counter(f, n, s->has_pages_absent, s->pages_absent, "absent");
	n = put_counter(f, n, s->has_pages_in_parent, s->pages_in_parent, "in parent");
	n = put_counter(f, n, s->has_pages_scanned, s->pages_scanned, "scanned");
	fputs(n ? "\n" : "none recorded\n", f);
	if (s->has_bytes_written) {
		fputs("  written    ", f);
		put_size(f, s->bytes_written);
		fputc('\n', f);
	}
}

/* A string from an image, plain unless it holds control bytes (then quoted and escaped). */
static void put_str(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			pb_text_string(f, s);
			return;
		}
	}
	fputs(s, f);
}

/* Whether the parent directory is there and is the snapshot the inventory names. */
static void show_parent_check(FILE *f, int dirfd, const Inventory *inv)
{
	_cleanup_close_ int pfd =
	    openat(dirfd, inv->parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ProtobufCMessage *msg = NULL;
	struct ferry_err err;
	const Inventory *pinv;

	if (pfd < 0) {
		fprintf(f, " [not found: %s]", strerror(errno));
		return;
	}
	if (img_read(pfd, "inventory.img", IMG_INVENTORY, &msg, &err) < 0) {
		fprintf(f, " [unreadable: %s]", err.msg);
		return;
	}
	pinv = (const Inventory *)msg;
	if (inv->parent_snapshot_id && strcmp(pinv->snapshot_id, inv->parent_snapshot_id)) {
		fputs(" [MISMATCH: that directory holds snapshot ", f);
		put_str(f, pinv->snapshot_id);
		fputc(']', f);
	} else {
		fputs(" [found]", f);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void show_inventory(FILE *f, int dirfd, const Inventory *inv)
{
	fputs("  snapshot   ", f);
	put_str(f, inv->snapshot_id);
	fprintf(f, " (%s, %s)\n", inv->has_pre_dump && inv->pre_dump ? "pre-dump" : "dump",
		inv->has_complete && inv->complete ? "complete" : "partial: never finished");
	fputs("  parent     ", f);
	if (!inv->parent_path && !inv->parent_snapshot_id) {
		fputs("none\n", f);
	} else {
		put_str(f, inv->parent_path ? inv->parent_path : "(no path)");
		if (inv->parent_snapshot_id) {
			fputs(", snapshot ", f);
			put_str(f, inv->parent_snapshot_id);
		}
		if (inv->parent_path && dirfd >= 0)
			show_parent_check(f, dirfd, inv);
		fputc('\n', f);
	}
	fprintf(f, "  pid        %" PRIu32 "\n", inv->root_pid);
	fputs("  dumped     ", f);
	put_realtime(f, inv->dump_time_ns);
	fputs(" by ferry ", f);
	put_str(f, inv->ferry_version);
	fputs("\n  cpu        ", f);
	put_str(f, inv->arch);
	fprintf(f, ", xfeatures 0x%" PRIx64 ", xsave area %" PRIu32 " bytes\n", inv->xfeatures,
		inv->xsave_size);
	show_stats(f, inv->stats);
}

static void summarize_pstree(FILE *f, const Pstree *p)
{
	size_t threads = 0;

	for (size_t i = 0; i < p->n_entries; i++)
		threads += p->entries[i]->n_threads;
	put_count(f, p->n_entries, "process", "processes");
	fputs(", ", f);
	put_count(f, threads, "thread", "threads");
	fputs(", pid namespace ", f);
	pb_text_string(f, p->pid_ns_mode);
}

static void summarize_mm(FILE *f, const Mm *mm)
{
	uint64_t mapped = 0;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->end > mm->vmas[i]->start)
			mapped += mm->vmas[i]->end - mm->vmas[i]->start;
	put_count(f, mm->n_vmas, "vma", "vmas");
	fputs(", ", f);
	put_count(f, mm->n_files, "file", "files");
	fputs(", ", f);
	put_size(f, mapped);
	fputs(" mapped", f);
}

static void summarize_pagemap(FILE *f, const Pagemap *pm)
{
	uint64_t present = 0, parent = 0, lazy = 0, zero = 0;

	for (size_t i = 0; i < pm->n_runs; i++) {
		const PageRun *r = pm->runs[i];
		if (r->flags & FERRY_PR_PRESENT)
			present += r->nr_pages;
		if (r->flags & FERRY_PR_IN_PARENT)
			parent += r->nr_pages;
		if (r->flags & FERRY_PR_LAZY)
			lazy += r->nr_pages;
		if (r->flags & FERRY_PR_ZERO)
			zero += r->nr_pages;
	}
	put_count(f, pm->n_runs, "run", "runs");
	fprintf(f,
		": %" PRIu64 " present, %" PRIu64 " in parent, %" PRIu64 " lazy, %" PRIu64
		" zero pages; ",
		present, parent, lazy, zero);
	put_count(f, pm->n_chunks, "chunk", "chunks");
	fputs(", ", f);
	put_size(f, pm->pages_size);
	fputs(" of data", f);
}

/* One line (without its newline) saying what the image holds. */
static void summarize(FILE *f, const struct shown_image *img)
{
	const ProtobufCMessage *m = img->msg;

	if (img->error) {
		fprintf(f, "UNREADABLE: %s", img->error);
		return;
	}
	switch (img->kind) {
	case IMG_INVENTORY: {
		const Inventory *inv = (const Inventory *)m;
		fputs("snapshot ", f);
		put_str(f, inv->snapshot_id);
		break;
	}
	case IMG_PSTREE:
		summarize_pstree(f, (const Pstree *)m);
		break;
	case IMG_TASK: {
		const TaskCore *t = (const TaskCore *)m;
		fprintf(f, "pid %" PRIu32 " ", t->pid);
		pb_text_string(f, t->comm);
		fputs(", ", f);
		put_count(f, t->n_sigactions, "signal handler", "signal handlers");
		break;
	}
	case IMG_CORE: {
		const ThreadCore *t = (const ThreadCore *)m;
		fprintf(f, "tid %" PRIu32, t->tid);
		if (t->comm) {
			fputc(' ', f);
			pb_text_string(f, t->comm);
		}
		if (t->has_syscall_nr && t->syscall_nr >= 0)
			fprintf(f, ", in syscall %" PRId64, t->syscall_nr);
		break;
	}
	case IMG_MM:
		summarize_mm(f, (const Mm *)m);
		break;
	case IMG_FDS: {
		const Fds *fds = (const Fds *)m;
		put_count(f, fds->n_fds, "fd", "fds");
		fputs(", ", f);
		put_count(f, fds->n_ofds, "open file", "open files");
		break;
	}
	case IMG_PAGEMAP:
		summarize_pagemap(f, (const Pagemap *)m);
		break;
	case IMG_PAGES:
		put_size(f, img->pages_len);
		fprintf(f, " of page data (%" PRIu64 " pages)", img->pages_len / PAGE_SIZE);
		break;
	default:
		fputs("unknown kind", f);
	}
}

/* The full decoding of one image, under a header line. */
static void show_image_text(FILE *f, const struct shown_image *img)
{
	if (img->error)
		return;
	fprintf(f, "\n--- %s: %s image, %lld bytes ---\n", img->name, img_kind_name(img->kind),
		(long long)img->file_size);
	if (img->kind == IMG_PAGES) {
		fprintf(f, "format_version: %u\ndata_offset: %d\ndata_bytes: %" PRIu64 "\n",
			FERRY_IMG_VERSION, FERRY_PAGES_DATA_OFF, img->pages_len);
		return;
	}
	pb_print_text(f, img->msg, 0);
}

static void show_image_json(FILE *f, const struct shown_image *img, int indent)
{
	if (img->error) {
		fputs("{\"error\": ", f);
		pb_json_string(f, img->error, strlen(img->error));
		fputc('}', f);
	} else if (img->kind == IMG_PAGES) {
		fprintf(f, "{\"data_offset\": %d, \"data_bytes\": %" PRIu64 "}",
			FERRY_PAGES_DATA_OFF, img->pages_len);
	} else {
		pb_print_json(f, img->msg, indent);
	}
}

/* lazy-stats.json, written by `ferry lazy-pages` when every page arrived. */
struct lazy_stats {
	unsigned long on_fault, faults, background;
	double p50, p99, max, total_ms;
};

static bool read_lazy_stats(int dirfd, struct lazy_stats *ls)
{
	char *text = NULL;
	struct ferry_err err;
	bool ok;

	if (dirfd < 0 || faccessat(dirfd, "lazy-stats.json", F_OK, 0) < 0 ||
	    read_file_at(dirfd, "lazy-stats.json", &text, NULL, &err) < 0)
		return false;
	ok = sscanf(text,
		    "{\"pages_on_fault\":%lu,\"faults\":%lu,\"pages_background\":%lu,"
		    "\"fault_p50_us\":%lf,\"fault_p99_us\":%lf,\"fault_max_us\":%lf,"
		    "\"total_ms\":%lf}",
		    &ls->on_fault, &ls->faults, &ls->background, &ls->p50, &ls->p99, &ls->max,
		    &ls->total_ms) == 7;
	free(text);
	return ok;
}

static void show_lazy_stats_text(FILE *f, int dirfd)
{
	struct lazy_stats ls;

	if (!read_lazy_stats(dirfd, &ls))
		return;
	fprintf(f,
		"  post-copy  %lu pages on %lu faults, %lu in the background; fault latency "
		"p50 %.1f us, p99 %.1f us, max %.1f us; all pages after %.1f ms\n",
		ls.on_fault, ls.faults, ls.background, ls.p50, ls.p99, ls.max, ls.total_ms);
}

static void show_dir_text(FILE *f, const char *dir, int dirfd, struct shown_image *imgs, size_t n)
{
	const struct shown_image *inv = NULL;
	int width = 0;

	for (size_t i = 0; i < n; i++)
		if (is_inventory(imgs[i].name))
			inv = &imgs[i];
	fprintf(f, "image directory %s\n", dir);
	if (!inv)
		fputs("  no inventory.img: not a finished image directory\n", f);
	else if (inv->msg && inv->kind == IMG_INVENTORY)
		show_inventory(f, dirfd, (const Inventory *)inv->msg);
	else if (inv->msg)
		fprintf(f, "  inventory.img holds a %s image\n", img_kind_name(inv->kind));
	show_lazy_stats_text(f, dirfd);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(imgs[i].name) > width)
			width = strlen(imgs[i].name);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "  %-*s  ", width, imgs[i].name);
		summarize(f, &imgs[i]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < n; i++)
		show_image_text(f, &imgs[i]);
}

static void show_dir_json(FILE *f, const char *dir, int dirfd, struct shown_image *imgs, size_t n)
{
	struct lazy_stats ls;

	fputs("{\n  \"dir\": ", f);
	pb_json_string(f, dir, strlen(dir));
	if (read_lazy_stats(dirfd, &ls))
		fprintf(f,
			",\n  \"lazy_stats\": {\"pages_on_fault\": %lu, \"faults\": %lu, "
			"\"pages_background\": %lu, \"fault_p50_us\": %.1f, \"fault_p99_us\": %.1f, "
			"\"fault_max_us\": %.1f, \"total_ms\": %.1f}",
			ls.on_fault, ls.faults, ls.background, ls.p50, ls.p99, ls.max, ls.total_ms);
	fputs(",\n  \"images\": {", f);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		pb_json_string(f, imgs[i].name, strlen(imgs[i].name));
		fputs(": ", f);
		show_image_json(f, &imgs[i], 2);
	}
	fputs(n ? "\n  }\n}\n" : "}\n}\n", f);
}

static int show_dir(const char *dir, bool json)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct shown_image *imgs = NULL;
	struct ferry_err err;
	char **names = NULL;
	size_t n = 0;
	int status = 0;

	if (dirfd < 0) {
		ferry_fail_errno(&err, "open image directory %s", dir);
		cli_error("show", &err);
		return 1;
	}
	if (list_images(dirfd, dir, &names, &n, &err) < 0) {
		cli_error("show", &err);
		return 1;
	}
	if (n == 0) {
		ferry_fail(&err, 0, "%s: no images (*.img files) in this directory", dir);
		cli_error("show", &err);
		free(names);
		return 1;
	}
	imgs = calloc(n, sizeof(*imgs));
	if (!imgs) {
		ferry_fail(&err, ENOMEM, "show %s", dir);
		cli_error("show", &err);
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		imgs[i].name = steal_ptr(&names[i]);
		if (load_image(dirfd, imgs[i].name, &imgs[i], &err) < 0) {
			cli_error("show", &err);
			imgs[i].error = strdup(err.msg);
			if (!imgs[i].error)
				imgs[i].error = strdup("out of memory");
			status = 1;
		}
	}
	if (json)
		show_dir_json(stdout, dir, dirfd, imgs, n);
	else
		show_dir_text(stdout, dir, dirfd, imgs, n);
out:
	for (size_t i = 0; imgs && i < n; i++)
		free_image(&imgs[i]);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(imgs);
	return status;
}

/* The directory holding path: an inventory's parent_path is relative to it. */
static int open_dir_of(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;

	if (!dir)
		return -1;
	if (!slash)
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (slash == dir)
		slash++; /* "/inventory.img" lives in "/" */
	*slash = '\0';
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int show_file(const char *path, bool json)
{
	struct shown_image img = {.name = (char *)path};
	_cleanup_close_ int dirfd = -1;
	struct ferry_err err;

	if (load_image(AT_FDCWD, path, &img, &err) < 0) {
		cli_error("show", &err);
		if (img.msg)
			protobuf_c_message_free_unpacked(img.msg, NULL);
		return 1;
	}
	if (json) {
		show_image_json(stdout, &img, 0);
		fputc('\n', stdout);
	} else {
		fprintf(stdout, "image %s\n", path);
		if (img.kind == IMG_INVENTORY) {
			dirfd = open_dir_of(path);
			show_inventory(stdout, dirfd, (const Inventory *)img.msg);
		} else {
			fputs("  ", stdout);
			summarize(stdout, &img);
			fputc('\n', stdout);
		}
		show_image_text(stdout, &img);
	}
	if (img.msg)
		protobuf_c_message_free_unpacked(img.msg, NULL);
	return 0;
}

int cmd_show(int argc, char **argv)
{
	struct ferry_opts o;
	struct stat st;
	const char *path;
	int r = opts_parse("show", argc, argv, OPT_JSON | OPT_DIR, show_help, &o);

	if (r > 0)
		return 0;
	if (r < 0)
		return 2;
	if (o.argc > 1 || (o.argc == 1 && o.dir) || (o.argc == 0 && !o.dir)) {
		fprintf(stderr, "ferry show: give one image directory or file (see ferry "
				"show --help)\n");
		return 2;
	}
	path = o.dir ? o.dir : o.argv[0];
	if (stat(path, &st) < 0) {
		struct ferry_err err;
		ferry_fail_errno(&err, "%s", path);
		cli_error("show", &err);
		return 1;
	}
	r = S_ISDIR(st.st_mode) ? show_dir(path, o.json) : show_file(path, o.json);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		struct ferry_err err;
		ferry_fail_errno(&err, "write output");
		cli_error("show", &err);
		return 1;
	}
	return r;
}
