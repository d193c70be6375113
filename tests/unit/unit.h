/*
 * What the cmocka unit tests share: a fresh temporary directory per test
 * (setup/teardown for cmocka_unit_test_setup_teardown, removed with all it
 * holds) and an assertion on the text of a ferry error.
 */
#ifndef FERRY_TESTS_UNIT_H
#define FERRY_TESTS_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define assert_msg_has(err, sub)                                                                   \
	do {                                                                                       \
		if (!strstr((err)->msg, (sub)))                                                    \
			fail_msg("error \"%s\" does not contain \"%s\"", (err)->msg, (sub));       \
	} while (0)

struct tmpdir {
	char path[64];
	int fd;
};

static inline int make_tmpdir(void **state)
{
	struct tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->path, sizeof(t->path), "/tmp/ferry-unit-XXXXXX");
	if (!mkdtemp(t->path)) {
		free(t);
		return -1;
	}
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->fd < 0) {
		rmdir(t->path);
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static inline int unit_remove_entry(const char *path, const struct stat *st, int type,
				    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static inline int remove_tmpdir(void **state)
{
	struct tmpdir *t = *state;

	close(t->fd);
	nftw(t->path, unit_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, make_tmpdir, remove_tmpdir)

#endif
