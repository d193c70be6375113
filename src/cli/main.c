/*
 * ferry: checkpoint and restore running processes, and move them between hosts.
 * main() only dispatches to one command per file in src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"check", cmd_check, "check the kernel features ferry relies on"},
	{"dump", cmd_dump, "checkpoint a process into an image directory"},
	{"pre-dump", cmd_pre_dump, "copy a running process's memory (pre-copy round)"},
	{"untrack", cmd_untrack, "stop the dirty tracking of a pre-copied process"},
	{"restore", cmd_restore, "restore a process from an image directory"},
	{"lazy-pages", cmd_lazy_pages, "serve the memory of a lazy restore (post-copy)"},
	{"show", cmd_show, "decode images for humans (or --json for scripts)"},
	{"run", cmd_run, "start a command in fresh namespaces, ready to be moved"},
	{"page-server", cmd_page_server, "receive dumped pages over the network into image directories"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nferry COMMAND --help shows the options of a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("ferry %s\n", FERRY_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "ferry: unknown command '%s' (see ferry --help)\n", argv[1]);
	return 2;
}
