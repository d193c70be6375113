/*
 * Unit tests of src/proc: the text parsers on hand-written samples (good and
 * malformed), then the /proc wrappers on this very process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc/proc.h"

#define assert_msg_has(err, sub)                                                                   \
	do {                                                                                       \
		if (!strstr((err)->msg, (sub)))                                                    \
			fail_msg("error \"%s\" does not contain \"%s\"", (err)->msg, (sub));       \
	} while (0)

/* maps */

static const char maps_sample[] =
    "55d4a0a00000-55d4a0a02000 r--p 00000000 fe:00 247498                     /usr/bin/cat\n"
    "55d4a0a02000-55d4a0a07000 r-xp 00002000 fe:00 247498                     /usr/bin/cat\n"
    "55d4a1e3c000-55d4a1e5d000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f0c1e000000-7f0c1e021000 rw-p 00000000 00:00 0 \n"
    "7f0c1e100000-7f0c1e101000 rw-s 00003000 00:1f 5678                       /tmp/my data "
    "file.bin\n"
    "7f0c1e200000-7f0c1e201000 rw-s 00000000 00:01 1024                       /memfd:buf "
    "(deleted)\n"
    "7ffd5c9e4000-7ffd5ca05000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd5cbc9000-7ffd5cbcb000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

static void maps_parses_file_anon_heap_stack_vdso_vsyscall(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text(maps_sample, false, &v, &n, &err), 0);
	assert_int_equal(n, 9);

	assert_int_equal(v[0].start, 0x55d4a0a00000ULL);
	assert_int_equal(v[0].end, 0x55d4a0a02000ULL);
	assert_int_equal(v[0].prot, PROT_READ);
	assert_false(v[0].shared);
	assert_int_equal(v[0].dev_major, 0xfe);
	assert_int_equal(v[0].dev_minor, 0);
	assert_int_equal(v[0].ino, 247498);
	assert_string_equal(v[0].path, "/usr/bin/cat");
	assert_false(v[0].deleted);
	assert_int_equal(v[0].vmflags, 0);

	assert_int_equal(v[1].prot, PROT_READ | PROT_EXEC);
	assert_int_equal(v[1].pgoff, 0x2000);

	assert_string_equal(v[2].path, "[heap]");
	assert_int_equal(v[2].prot, PROT_READ | PROT_WRITE);

	assert_null(v[3].path);
	assert_int_equal(v[3].ino, 0);

	assert_string_equal(v[6].path, "[stack]");
	assert_string_equal(v[7].path, "[vdso]");

	assert_int_equal(v[8].start, 0xffffffffff600000ULL);
	assert_int_equal(v[8].end, 0xffffffffff601000ULL);
	assert_int_equal(v[8].prot, PROT_EXEC);
	assert_string_equal(v[8].path, "[vsyscall]");
	proc_free_maps(v, n);
}

static void maps_keeps_spaces_inside_path(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text(maps_sample, false, &v, &n, &err), 0);
	assert_string_equal(v[4].path, "/tmp/my data file.bin");
	assert_true(v[4].shared);
	assert_int_equal(v[4].pgoff, 0x3000);
	assert_int_equal(v[4].dev_minor, 0x1f);
	assert_int_equal(v[4].ino, 5678);
	proc_free_maps(v, n);
}

static void maps_strips_deleted_suffix_and_marks_deleted(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text(maps_sample, false, &v, &n, &err), 0);
	assert_string_equal(v[5].path, "/memfd:buf");
	assert_true(v[5].deleted);
	for (size_t i = 0; i < n; i++)
		if (i != 5)
			assert_false(v[i].deleted);
	proc_free_maps(v, n);
}

static void maps_accepts_empty_text_and_missing_final_newline(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text("", false, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	proc_free_maps(v, n);
	assert_int_equal(
	    proc_parse_maps_text("1000-2000 rw-p 00000000 00:00 0", false, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_null(v[0].path);
	proc_free_maps(v, n);
}

static void maps_rejects_malformed_lines_naming_them(void **state)
{
	static const char *const bad[] = {
	    "garbage",
	    "1000-2000",
	    "1000-2000 rw-p",
	    "1000-2000 rw-p 00000000 00:00",
	    "-2000 rw-p 00000000 00:00 0",
	    "1000- rw-p 00000000 00:00 0",
	    "2000-1000 rw-p 00000000 00:00 0",
	    "1000-1000 rw-p 00000000 00:00 0",
	    "1001-2000 rw-p 00000000 00:00 0",
	    "1000-2000 rwzp 00000000 00:00 0",
	    "1000-2000 rw-q 00000000 00:00 0",
	    "1000-2000 rw- 00000000 00:00 0",
	    "1000-2000 rw-p 0000000g 00:00 0",
	    "1000-2000 rw-p 00000000 0000 0",
	    "1000-2000 rw-p 00000000 00:00 x",
	    "1000-2000 rw-p 00000000 00:00 -1",
	    "1000-2000 rw-p 00000000 00:00 0x",
	    "1000-2000 rw-p 00000000 100000000:00 0",
	    "1000-2000  rw-p 00000000 00:00 0",
	    "10000000000000000-10000000000001000 rw-p 00000000 00:00 0",
	    "1000-2000 rw-p 100000000000000000 00:00 0",
	    "1000-2000 rw-p 00000000 00:00 99999999999999999999999",
	    "Size:    4 kB",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_err err = {0};
		struct proc_vma *v = (void *)1;
		size_t n = 1;
		char text[256];

		snprintf(text, sizeof(text), "0-1000 r--p 00000000 00:00 0\n%s\n", bad[i]);
		if (proc_parse_maps_text(text, false, &v, &n, &err) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_null(v);
		assert_int_equal(n, 0);
		assert_msg_has(&err, "maps line 2");
		assert_msg_has(&err, bad[i]);
	}
}

static void maps_rejects_empty_line_and_overlap(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text("1000-2000 rw-p 00000000 00:00 0\n\n"
					      "3000-4000 rw-p 00000000 00:00 0\n",
					      false, &v, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "line 2");
	assert_int_equal(proc_parse_maps_text("1000-3000 rw-p 00000000 00:00 0\n"
					      "2000-4000 rw-p 00000000 00:00 0\n",
					      false, &v, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "overlaps");
	assert_msg_has(&err, "2000-4000");
	assert_int_equal(proc_parse_maps_text("3000-4000 rw-p 00000000 00:00 0\n"
					      "1000-2000 rw-p 00000000 00:00 0\n",
					      false, &v, &n, &err),
			 -EINVAL);
}

static void maps_quotes_unprintable_bytes_safely(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text("1000-2000 rw\x01p\x7f 0\n", false, &v, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "1000-2000 rw?p? 0");
}

/* smaps */

static const char smaps_sample[] =
    "55d4a1e3c000-55d4a1e5d000 rw-p 00000000 00:00 0                          [heap]\n"
    "Size:                132 kB\n"
    "KernelPageSize:        4 kB\n"
    "Rss:                   8 kB\n"
    "Anonymous:             8 kB\n"
    "THPeligible:           0\n"
    "VmFlags: rd wr mr mw me ac sd\n"
    "7ffd5c9e4000-7ffd5ca05000 rw-p 00000000 00:00 0                          [stack]\n"
    "Size:                132 kB\n"
    "VmFlags: rd wr mr mw me gd ac dc dd hg wf um uw\n"
    "7ffd5cbc9000-7ffd5cbcb000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ProtectionKey:         0\n"
    "VmFlags: rd ex mr mw me de sl zz qqq\n";

static void smaps_maps_each_vmflag_to_its_bit(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text(smaps_sample, true, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].path, "[heap]");
	assert_int_equal(v[0].vmflags,
			 VMF_RD | VMF_WR | VMF_MR | VMF_MW | VMF_ME | VMF_AC | VMF_SD);
	assert_int_equal(v[1].vmflags, VMF_RD | VMF_WR | VMF_MR | VMF_MW | VMF_ME | VMF_GD |
					   VMF_AC | VMF_DC | VMF_DD | VMF_HG | VMF_WF | VMF_UM |
					   VMF_UW);
	proc_free_maps(v, n);
}

static void smaps_unknown_vmflag_sets_unknown_bit(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text(smaps_sample, true, &v, &n, &err), 0);
	assert_int_equal(v[2].vmflags, VMF_RD | VMF_EX | VMF_MR | VMF_MW | VMF_ME | VMF_DE |
					   VMF_SL | VMF_UNKNOWN);
	assert_false(v[0].vmflags & VMF_UNKNOWN);
	proc_free_maps(v, n);
}

static void smaps_rejects_key_before_mapping_and_missing_vmflags(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text("Size: 4 kB\n", true, &v, &n, &err), -EINVAL);
	assert_msg_has(&err, "before the first mapping");
	assert_int_equal(proc_parse_maps_text("1000-2000 rw-p 00000000 00:00 0\nSize: 4 kB\n"
					      "3000-4000 rw-p 00000000 00:00 0\nVmFlags: rd\n",
					      true, &v, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "no VmFlags");
	assert_msg_has(&err, "1000-2000");
	assert_int_equal(proc_parse_maps_text("1000-2000 rw-p 00000000 00:00 0\nVmFlags: rd\n"
					      "3000-4000 rw-p 00000000 00:00 0\n",
					      true, &v, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "3000-4000");
	assert_int_equal(proc_parse_maps_text("1000-2000 rw-p 00000000 00:00 0\nno colon here\n",
					      true, &v, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "no colon here");
	assert_int_equal(proc_parse_maps_text("1000-2000 rw-p 00000000 00:00 0\nBad key: 1\n", true,
					      &v, &n, &err),
			 -EINVAL);
}

static void maps_rejects_smaps_key_lines(void **state)
{
	struct ferry_err err = {0};
	struct proc_vma *v;
	size_t n;

	assert_int_equal(proc_parse_maps_text(smaps_sample, false, &v, &n, &err), -EINVAL);
	assert_msg_has(&err, "maps line 2");
}

/* status */

static const char status_sample[] = "Name:\tmy prog\\\\x\\n\n"
				    "Umask:\t0027\n"
				    "State:\tS (sleeping)\n"
				    "Tgid:\t4242\n"
				    "Ngid:\t0\n"
				    "Pid:\t4243\n"
				    "PPid:\t1\n"
				    "TracerPid:\t77\n"
				    "Uid:\t1000\t1001\t1002\t1003\n"
				    "Gid:\t2000\t2001\t2002\t4294967295\n"
				    "FDSize:\t64\n"
				    "Groups:\t4 24 27 \n"
				    "NStgid:\t4242\t1\n"
				    "NSpid:\t4243\t2\n"
				    "VmRSS:\t    1760 kB\n"
				    "Threads:\t3\n"
				    "SigQ:\t0/96365\n"
				    "SigPnd:\t0000000000000100\n"
				    "ShdPnd:\t0000000000004000\n"
				    "SigBlk:\t0000000000010000\n"
				    "SigIgn:\t0000000000001000\n"
				    "SigCgt:\tffffffff80000000\n"
				    "CapInh:\t0000000000000001\n"
				    "CapPrm:\t000001fffeffffff\n"
				    "CapEff:\t000001fffefffffe\n"
				    "CapBnd:\t000001ffffffffff\n"
				    "CapAmb:\t0000000000000400\n"
				    "NoNewPrivs:\t1\n"
				    "Seccomp:\t2\n"
				    "Seccomp_filters:\t1\n"
				    "Speculation_Store_Bypass:\tvulnerable\n"
				    "Cpus_allowed_list:\t0-1\n";

static void status_parses_every_field(void **state)
{
	struct ferry_err err = {0};
	struct proc_status st;

	assert_int_equal(proc_parse_status_text(status_sample, &st, &err), 0);
	assert_string_equal(st.name, "my prog\\x\n");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.tgid, 4242);
	assert_int_equal(st.pid, 4243);
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.tracer_pid, 77);
	assert_int_equal(st.uid[0], 1000);
	assert_int_equal(st.uid[1], 1001);
	assert_int_equal(st.uid[2], 1002);
	assert_int_equal(st.uid[3], 1003);
	assert_int_equal(st.gid[0], 2000);
	assert_int_equal(st.gid[3], 4294967295u);
	assert_int_equal(st.ngroups, 3);
	assert_int_equal(st.groups[0], 4);
	assert_int_equal(st.groups[1], 24);
	assert_int_equal(st.groups[2], 27);
	assert_int_equal(st.umask, 027);
	assert_int_equal(st.threads, 3);
	assert_int_equal(st.sig_pnd, 0x100);
	assert_int_equal(st.shd_pnd, 0x4000);
	assert_int_equal(st.sig_blk, 0x10000);
	assert_int_equal(st.sig_ign, 0x1000);
	assert_int_equal(st.sig_cgt, 0xffffffff80000000ULL);
	assert_int_equal(st.cap_inh, 1);
	assert_int_equal(st.cap_prm, 0x1fffeffffffULL);
	assert_int_equal(st.cap_eff, 0x1fffefffffeULL);
	assert_int_equal(st.cap_bnd, 0x1ffffffffffULL);
	assert_int_equal(st.cap_amb, 0x400);
	assert_int_equal(st.no_new_privs, 1);
	assert_int_equal(st.seccomp, 2);
}

static void status_reads_nspid_outermost_first(void **state)
{
	struct ferry_err err = {0};
	struct proc_status st;

	assert_int_equal(proc_parse_status_text(status_sample, &st, &err), 0);
	assert_int_equal(st.nspid_n, 2);
	assert_int_equal(st.nspid[0], 4243);
	assert_int_equal(st.nspid[1], 2);
}

/* Copy src with its line starting with `key` replaced by `line`, or dropped if line is NULL. */
static void status_with(char *buf, size_t size, const char *src, const char *key, const char *line)
{
	char nkey[64];
	const char *at, *next;

	snprintf(nkey, sizeof(nkey), "\n%s", key);
	at = strncmp(src, key, strlen(key)) == 0 ? src : strstr(src, nkey) + 1;
	next = strchr(at, '\n') + 1;
	snprintf(buf, size, "%.*s%s%s", (int)(at - src), src, line ? line : "", next);
}

static void status_without_seccomp_and_nspid_uses_defaults(void **state)
{
	struct ferry_err err = {0};
	struct proc_status st;
	char a[2048], b[2048];

	status_with(a, sizeof(a), status_sample, "Seccomp:", NULL);
	status_with(b, sizeof(b), a, "NSpid:", NULL);
	assert_null(strstr(b, "NSpid:"));
	assert_null(strstr(b, "Seccomp:"));
	assert_int_equal(proc_parse_status_text(b, &st, &err), 0);
	assert_int_equal(st.seccomp, 0);
	assert_int_equal(st.nspid_n, 1);
	assert_int_equal(st.nspid[0], 4243);
}

static void status_rejects_bad_values_naming_the_line(void **state)
{
	static const struct {
		const char *key, *line;
	} bad[] = {
	    {"Pid:", "Pid:\t-1\n"},
	    {"Pid:", "Pid:\t12x\n"},
	    {"Pid:", "Pid:\t99999999999\n"},
	    {"Pid:", "Pid:\t\n"},
	    {"State:", "State:\t\n"},
	    {"State:", "State:\t7 (seven)\n"},
	    {"Uid:", "Uid:\t1\t2\t3\n"},
	    {"Uid:", "Uid:\t1\t2\t3\t4\t5\n"},
	    {"Uid:", "Uid:\t1\t2\t3\t4294967296\n"},
	    {"Gid:", "Gid:\t1\t2\t3\t-4\n"},
	    {"Umask:", "Umask:\t0089\n"},
	    {"Umask:", "Umask:\t01777\n"},
	    {"Threads:", "Threads:\tmany\n"},
	    {"SigBlk:", "SigBlk:\t0x10\n"},
	    {"CapEff:", "CapEff:\tzz\n"},
	    {"NoNewPrivs:", "NoNewPrivs:\t2\n"},
	    {"Seccomp:", "Seccomp:\t3\n"},
	    {"NSpid:", "NSpid:\t\n"},
	    {"NSpid:", "NSpid:\t1 2 3 4 5 6 7 8 9\n"},
	    {"Name:", "Name:\t0123456789012345678901234567890123456789012345678901234567890123\n"},
	    {"FDSize:", "no colon at all\n"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_err err = {0};
		struct proc_status st;
		char text[2048], shown[128];

		status_with(text, sizeof(text), status_sample, bad[i].key, bad[i].line);
		if (proc_parse_status_text(text, &st, &err) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i].line);
		assert_msg_has(&err, "status line");
		snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(bad[i].line, "\t\n"),
			 bad[i].line);
		assert_msg_has(&err, shown);
	}
}

static void status_rejects_more_than_256_groups(void **state)
{
	struct ferry_err err = {0};
	struct proc_status st;
	char groups[2048] = "Groups:\t", text[4096];

	for (int g = 0; g < 257; g++)
		snprintf(groups + strlen(groups), sizeof(groups) - strlen(groups), "%d ", g);
	strcat(groups, "\n");
	status_with(text, sizeof(text), status_sample, "Groups:", groups);
	assert_int_equal(proc_parse_status_text(text, &st, &err), -EINVAL);
	assert_msg_has(&err, "Groups:");
}

static void status_rejects_missing_required_field(void **state)
{
	static const char *const keys[] = {
	    "Name:",   "State:", "Tgid:",   "PPid:",   "Uid:",
	    "Groups:", "Umask:", "SigCgt:", "CapAmb:", "NoNewPrivs:"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct ferry_err err = {0};
		struct proc_status st;
		char text[2048], want[64];

		status_with(text, sizeof(text), status_sample, keys[i], NULL);
		assert_int_equal(proc_parse_status_text(text, &st, &err), -EINVAL);
		snprintf(want, sizeof(want), "no %.*s line", (int)strlen(keys[i]) - 1, keys[i]);
		assert_msg_has(&err, want);
	}
}

/* stat */

static char *stat_line(char *buf, size_t size, const char *comm)
{
	snprintf(buf, size,
		 "4243 (%s) S 1 4240 4200 34816 4240 4194560 150 0 0 0 3 1 0 0 20 0 1 0 "
		 "123456 2621440 400 18446744073709551615 94500000000000 94500000004096 "
		 "140730000000000 0 0 0 65536 4096 2 1 0 0 17 1 0 0 0 0 0 "
		 "94500000008192 94500000009216 94500001000000 140730000001000 140730000001020 "
		 "140730000001020 140730000002000 0\n",
		 comm);
	return buf;
}

static void stat_parses_numbered_fields(void **state)
{
	struct ferry_err err = {0};
	struct proc_stat st;
	char text[1024];

	assert_int_equal(proc_parse_stat_text(stat_line(text, sizeof(text), "cat"), &st, &err), 0);
	assert_int_equal(st.pid, 4243);
	assert_string_equal(st.comm, "cat");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.pgrp, 4240);
	assert_int_equal(st.session, 4200);
	assert_int_equal(st.flags, 4194560);
	assert_int_equal(st.start_time, 123456);
	assert_int_equal(st.start_code, 94500000000000ULL);
	assert_int_equal(st.end_code, 94500000004096ULL);
	assert_int_equal(st.start_stack, 140730000000000ULL);
	assert_int_equal(st.exit_signal, 17);
	assert_int_equal(st.start_data, 94500000008192ULL);
	assert_int_equal(st.end_data, 94500000009216ULL);
	assert_int_equal(st.start_brk, 94500001000000ULL);
	assert_int_equal(st.arg_start, 140730000001000ULL);
	assert_int_equal(st.arg_end, 140730000001020ULL);
	assert_int_equal(st.env_start, 140730000001020ULL);
	assert_int_equal(st.env_end, 140730000002000ULL);
	assert_int_equal(st.exit_code, 0);
}

static void stat_comm_ends_at_last_paren(void **state)
{
	struct ferry_err err = {0};
	struct proc_stat st;
	char text[1024];

	assert_int_equal(proc_parse_stat_text(stat_line(text, sizeof(text), "a) b (c"), &st, &err),
			 0);
	assert_string_equal(st.comm, "a) b (c");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.exit_signal, 17);

	assert_int_equal(
	    proc_parse_stat_text(stat_line(text, sizeof(text), ") ) 1 2 ("), &st, &err), 0);
	assert_string_equal(st.comm, ") ) 1 2 (");
	assert_int_equal(proc_parse_stat_text(stat_line(text, sizeof(text), ""), &st, &err), 0);
	assert_string_equal(st.comm, "");
	assert_int_equal(
	    proc_parse_stat_text(stat_line(text, sizeof(text), "new\nline"), &st, &err), 0);
	assert_string_equal(st.comm, "new\nline");
}

static void stat_accepts_negative_signed_fields_and_extra_fields(void **state)
{
	struct ferry_err err = {0};
	struct proc_stat st;
	char text[1024];
	char *exit_sig;

	stat_line(text, sizeof(text), "t");
	exit_sig = strstr(text, " 17 ");
	memcpy(exit_sig, " -1 ", 4);
	assert_int_equal(proc_parse_stat_text(text, &st, &err), 0);
	assert_int_equal(st.exit_signal, -1);

	stat_line(text, sizeof(text), "t");
	strcpy(strrchr(text, '\n'), " 5 6\n");
	assert_int_equal(proc_parse_stat_text(text, &st, &err), 0);
}

static void stat_rejects_malformed_text(void **state)
{
	static const char *const bad[] = {
	    "",
	    "4243",
	    "4243 cat) S",
	    "4243 (cat S 1",
	    "x (cat) S 1",
	    "-1 (cat) S 1",
	    "4243 (cat)",
	    "4243 (cat) S 1 2 3\n",
	    "4243 (0123456789012345678901234567890123456789012345678901234567890123456789) S",
	};
	struct ferry_err err = {0};
	struct proc_stat st;
	char text[1024];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (proc_parse_stat_text(bad[i], &st, &err) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_msg_has(&err, "stat");
	}

	stat_line(text, sizeof(text), "cat");
	memcpy(strstr(text, " S "), " 5 ", 3);
	assert_int_equal(proc_parse_stat_text(text, &st, &err), -EINVAL);
	assert_msg_has(&err, "field 3");

	stat_line(text, sizeof(text), "cat");
	memcpy(strstr(text, " 4240 "), " -424 ", 6);
	assert_int_equal(proc_parse_stat_text(text, &st, &err), -EINVAL);
	assert_msg_has(&err, "field 5");

	stat_line(text, sizeof(text), "cat");
	memcpy(strstr(text, " 17 "), " 1x ", 4);
	assert_int_equal(proc_parse_stat_text(text, &st, &err), -EINVAL);
	assert_msg_has(&err, "field 38");

	stat_line(text, sizeof(text), "cat");
	memcpy(strstr(text, " 150 "), "  50 ", 5);
	assert_int_equal(proc_parse_stat_text(text, &st, &err), -EINVAL);

	stat_line(text, sizeof(text), "cat");
	strcpy(strrchr(text, '\n'), "\nmore\n");
	assert_int_equal(proc_parse_stat_text(text, &st, &err), -EINVAL);
	assert_msg_has(&err, "junk");
}

/* fdinfo */

static void fdinfo_parses_fields_without_lock(void **state)
{
	struct ferry_err err = {0};
	struct proc_fdinfo fi;

	assert_int_equal(proc_parse_fdinfo_text("pos:\t1234\nflags:\t0100002\nmnt_id:\t24\n"
						"ino:\t987654321\n",
						&fi, &err),
			 0);
	assert_int_equal(fi.pos, 1234);
	assert_int_equal(fi.flags, 0100002);
	assert_int_equal(fi.mnt_id, 24);
	assert_int_equal(fi.ino, 987654321);
	assert_false(fi.has_lock);
}

static void fdinfo_lock_line_sets_has_lock(void **state)
{
	struct ferry_err err = {0};
	struct proc_fdinfo fi;

	assert_int_equal(
	    proc_parse_fdinfo_text("pos:\t0\nflags:\t02\nmnt_id:\t31\nino:\t5\n"
				   "lock:\t1: POSIX  ADVISORY  WRITE 4243 00:1f:5 0 EOF\n",
				   &fi, &err),
	    0);
	assert_true(fi.has_lock);
	assert_int_equal(fi.flags, 02);
}

static void fdinfo_skips_lines_of_other_shapes(void **state)
{
	struct ferry_err err = {0};
	struct proc_fdinfo fi;

	assert_int_equal(
	    proc_parse_fdinfo_text("pos:\t0\nflags:\t02004002\nmnt_id:\t16\nino:\t1057\n"
				   "tfd:        5 events:       19 data:  5  pos:0 ino:0\n"
				   "inotify wd:1 ino:2 sdev:3\n"
				   "eventfd-count:                0\n"
				   "no colon\n\n",
				   &fi, &err),
	    0);
	assert_int_equal(fi.flags, 02004002);
	assert_false(fi.has_lock);
}

static void fdinfo_keeps_bits_of_negative_pos(void **state)
{
	struct ferry_err err = {0};
	struct proc_fdinfo fi;

	assert_int_equal(proc_parse_fdinfo_text("pos:\t-140737488355328\nflags:\t0100000\n"
						"mnt_id:\t24\nino:\t3\n",
						&fi, &err),
			 0);
	assert_int_equal(fi.pos, 0xffff800000000000ULL);
}

static void fdinfo_rejects_bad_values_and_missing_fields(void **state)
{
	struct ferry_err err = {0};
	struct proc_fdinfo fi;

	assert_int_equal(
	    proc_parse_fdinfo_text("pos:\t0\nflags:\t08\nmnt_id:\t24\nino:\t3\n", &fi, &err),
	    -EINVAL);
	assert_msg_has(&err, "fdinfo line 2");
	assert_msg_has(&err, "flags:");
	assert_int_equal(
	    proc_parse_fdinfo_text("pos:\tx\nflags:\t0\nmnt_id:\t24\nino:\t3\n", &fi, &err),
	    -EINVAL);
	assert_msg_has(&err, "pos:");
	assert_int_equal(
	    proc_parse_fdinfo_text("pos:\t0\nflags:\t0\nmnt_id:\t-2\nino:\t3\n", &fi, &err),
	    -EINVAL);
	assert_int_equal(proc_parse_fdinfo_text("pos:\t0\nflags:\t0\nmnt_id:\t24\n", &fi, &err),
			 -EINVAL);
	assert_msg_has(&err, "no ino line");
	assert_int_equal(proc_parse_fdinfo_text("", &fi, &err), -EINVAL);
}

/* children, auxv */

static void children_text_parses_pids_with_trailing_space(void **state)
{
	struct ferry_err err = {0};
	pid_t *kids;
	size_t n;

	assert_int_equal(proc_parse_children_text("12 345 6789 ", &kids, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(kids[0], 12);
	assert_int_equal(kids[1], 345);
	assert_int_equal(kids[2], 6789);
	free(kids);
	assert_int_equal(proc_parse_children_text("", &kids, &n, &err), 0);
	assert_int_equal(n, 0);
	free(kids);
	assert_int_equal(proc_parse_children_text("12 x3 ", &kids, &n, &err), -EINVAL);
	assert_msg_has(&err, "x3");
	assert_null(kids);
	assert_int_equal(proc_parse_children_text("0 ", &kids, &n, &err), -EINVAL);
	assert_int_equal(proc_parse_children_text("3000000000 ", &kids, &n, &err), -EINVAL);
}

static void auxv_stops_at_at_null_and_rejects_its_absence(void **state)
{
	const uint64_t data[] = {AT_PAGESZ, 4096, AT_UID, 1000, AT_NULL, 0, 99, 99};
	struct ferry_err err = {0};
	uint64_t *auxv;
	size_t n;

	assert_int_equal(proc_parse_auxv_data(data, sizeof(data), &auxv, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(auxv, data, 6 * sizeof(uint64_t));
	free(auxv);
	assert_int_equal(proc_parse_auxv_data(data, 4 * sizeof(uint64_t), &auxv, &n, &err),
			 -EINVAL);
	assert_msg_has(&err, "AT_NULL");
	assert_int_equal(proc_parse_auxv_data(data, 5 * sizeof(uint64_t) + 3, &auxv, &n, &err),
			 -EINVAL);
	assert_null(auxv);
}

/* This machine's /proc, on this process. */

static void real_self_maps_and_smaps_parse_and_hold_this_code(void **state)
{
	struct ferry_err err = {0};
	uintptr_t code = (uintptr_t)&real_self_maps_and_smaps_parse_and_hold_this_code;
	uintptr_t local = (uintptr_t)__builtin_frame_address(0);
	struct proc_vma *v;
	size_t n;
	bool found_code = false, found_stack = false;

	if (proc_parse_maps(getpid(), false, &v, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(n > 5);
	for (size_t i = 0; i < n; i++) {
		if (code >= v[i].start && code < v[i].end) {
			found_code = true;
			assert_true(v[i].prot & PROT_EXEC);
			assert_non_null(v[i].path);
			assert_non_null(strstr(v[i].path, "test_proc"));
		}
		if (local >= v[i].start && local < v[i].end)
			assert_string_equal(v[i].path, "[stack]");
	}
	assert_true(found_code);
	proc_free_maps(v, n);

	if (proc_parse_maps(getpid(), true, &v, &n, &err) < 0)
		fail_msg("%s", err.msg);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(!!(v[i].prot & PROT_READ), !!(v[i].vmflags & VMF_RD));
		assert_int_equal(!!(v[i].prot & PROT_WRITE), !!(v[i].vmflags & VMF_WR));
		if (v[i].path && strcmp(v[i].path, "[stack]") == 0) {
			found_stack = true;
			assert_true(v[i].vmflags & VMF_GD);
		}
	}
	assert_true(found_stack);
	proc_free_maps(v, n);
}

static void real_self_status_and_stat_parse_and_agree(void **state)
{
	struct ferry_err err = {0};
	struct proc_status st;
	struct proc_stat ps;

	if (proc_parse_status(getpid(), &st, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(st.tgid, getpid());
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.uid[0], getuid());
	assert_int_equal(st.gid[1], getegid());
	assert_int_equal(st.threads, 1);
	assert_true(st.nspid_n >= 1);
	assert_int_equal(st.nspid[0], getpid());
	assert_string_equal(st.name, "test_proc");

	if (proc_parse_stat(getpid(), &ps, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(ps.pid, getpid());
	assert_string_equal(ps.comm, "test_proc");
	assert_int_equal(ps.state, 'R');
	assert_int_equal(ps.ppid, getppid());
	assert_int_equal(ps.pgrp, getpgrp());
	assert_true(ps.start_code <= (uintptr_t)&real_self_status_and_stat_parse_and_agree);
	assert_true(ps.end_code > (uintptr_t)&real_self_status_and_stat_parse_and_agree);
	assert_true(ps.arg_start < ps.arg_end);
}

static void real_self_fdinfo_of_fd0_parses(void **state)
{
	struct ferry_err err = {0};
	struct proc_fdinfo fi;
	struct stat sb;

	/* The test runner may start us with fd 0 closed: then put /dev/null there. */
	if (fcntl(0, F_GETFD) < 0)
		assert_int_equal(open("/dev/null", O_RDONLY), 0);
	assert_int_equal(fstat(0, &sb), 0);
	if (proc_parse_fdinfo(getpid(), 0, &fi, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(fi.ino, sb.st_ino);
	assert_int_equal(fi.flags & O_ACCMODE, fcntl(0, F_GETFL) & O_ACCMODE);
	assert_true(fi.mnt_id > 0);
}

static void real_self_threads_children_and_auxv(void **state)
{
	struct ferry_err err = {0};
	uint64_t *auxv;
	size_t n, nkids;
	pid_t *kids, child;
	bool pagesz = false, found = false;

	assert_int_equal(proc_count_threads(getpid(), &err), 1);

	if (proc_read_auxv(getpid(), &auxv, &n, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(n % 2, 0);
	assert_int_equal(auxv[n - 2], AT_NULL);
	for (size_t i = 0; i < n; i += 2)
		if (auxv[i] == AT_PAGESZ)
			pagesz = auxv[i + 1] == getauxval(AT_PAGESZ);
	assert_true(pagesz);
	free(auxv);

	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	if (proc_parse_children(getpid(), &kids, &nkids, &err) < 0) {
		kill(child, SIGKILL);
		fail_msg("%s", err.msg);
	}
	for (size_t i = 0; i < nkids; i++)
		found |= kids[i] == child;
	free(kids);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_true(found);
}

static void real_missing_pid_reports_the_path(void **state)
{
	struct ferry_err err = {0};
	struct proc_status st;

	assert_int_equal(proc_parse_status(0x3fffffff, &st, &err), -ENOENT);
	assert_msg_has(&err, "/proc/1073741823/status");
}


/*
 * The BPF VmFlags reader against smaps, on a child whose mappings carry the
 * flags ferry restores (and a few it must see): the same bits for every one.
 */
static void child_with_flagged_mappings(int ready)
{
	const size_t len = 4 * 4096;
	static const int advice[] = {MADV_DONTFORK, MADV_DONTDUMP, MADV_HUGEPAGE,
				     MADV_NOHUGEPAGE, MADV_WIPEONFORK, MADV_SEQUENTIAL,
				     MADV_RANDOM};
	uint8_t *p;

	for (size_t i = 0; i < sizeof(advice) / sizeof(advice[0]); i++) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			madvise(p, len, advice[i]);
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		mlock(p, 4096); /* a locked VMA beside an unlocked one */
	mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mmap(NULL, len, PROT_EXEC | PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	pause();
	_exit(0);
}

static void real_vmaflags_agree_with_smaps(void **state)
{
	struct ferry_err err = {0};
	struct vmaflags *vf;
	uint32_t seen;
	size_t n;
	int pipefd[2];
	char c;

	assert_int_equal(pipe(pipefd), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		child_with_flagged_mappings(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	close(pipefd[1]);
	if (vmaflags_open(child, &vf, &err) < 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		print_message("SKIP: no BPF vma flags reader here: %s\n", err.msg);
		skip();
	}
	int r = vmaflags_check_smaps(vf, child, &n, &seen, &err);
	vmaflags_close(vf);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (r < 0)
		fail_msg("%s", err.msg);
	assert_true(n > 0);
	/* not VMF_LO: under ASan mlock does nothing */
	const uint32_t made = VMF_DC | VMF_DD | VMF_WF | VMF_GD | VMF_SH | VMF_NR;
	assert_int_equal(seen & made, made);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(maps_parses_file_anon_heap_stack_vdso_vsyscall),
	    cmocka_unit_test(maps_keeps_spaces_inside_path),
	    cmocka_unit_test(maps_strips_deleted_suffix_and_marks_deleted),
	    cmocka_unit_test(maps_accepts_empty_text_and_missing_final_newline),
	    cmocka_unit_test(maps_rejects_malformed_lines_naming_them),
	    cmocka_unit_test(maps_rejects_empty_line_and_overlap),
	    cmocka_unit_test(maps_quotes_unprintable_bytes_safely),
	    cmocka_unit_test(maps_rejects_smaps_key_lines),
	    cmocka_unit_test(smaps_maps_each_vmflag_to_its_bit),
	    cmocka_unit_test(smaps_unknown_vmflag_sets_unknown_bit),
	    cmocka_unit_test(smaps_rejects_key_before_mapping_and_missing_vmflags),
	    cmocka_unit_test(status_parses_every_field),
	    cmocka_unit_test(status_reads_nspid_outermost_first),
	    cmocka_unit_test(status_without_seccomp_and_nspid_uses_defaults),
	    cmocka_unit_test(status_rejects_bad_values_naming_the_line),
	    cmocka_unit_test(status_rejects_more_than_256_groups),
	    cmocka_unit_test(status_rejects_missing_required_field),
	    cmocka_unit_test(stat_parses_numbered_fields),
	    cmocka_unit_test(stat_comm_ends_at_last_paren),
	    cmocka_unit_test(stat_accepts_negative_signed_fields_and_extra_fields),
	    cmocka_unit_test(stat_rejects_malformed_text),
	    cmocka_unit_test(fdinfo_parses_fields_without_lock),
	    cmocka_unit_test(fdinfo_lock_line_sets_has_lock),
	    cmocka_unit_test(fdinfo_skips_lines_of_other_shapes),
	    cmocka_unit_test(fdinfo_keeps_bits_of_negative_pos),
	    cmocka_unit_test(fdinfo_rejects_bad_values_and_missing_fields),
	    cmocka_unit_test(children_text_parses_pids_with_trailing_space),
	    cmocka_unit_test(auxv_stops_at_at_null_and_rejects_its_absence),
	    cmocka_unit_test(real_self_maps_and_smaps_parse_and_hold_this_code),
	    cmocka_unit_test(real_self_status_and_stat_parse_and_agree),
	    cmocka_unit_test(real_vmaflags_agree_with_smaps),
	    cmocka_unit_test(real_self_fdinfo_of_fd0_parses),
	    cmocka_unit_test(real_self_threads_children_and_auxv),
	    cmocka_unit_test(real_missing_pid_reports_the_path),
	};

	return cmocka_run_group_tests_name("proc", tests, NULL, NULL);
}
