#include <stdio.h>
#include "cli/cli.h"

int cmd_run(int argc, char **argv)
{
	fprintf(stderr, "ferry run: not implemented yet\n");
	return 1;
}
