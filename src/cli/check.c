#include <stdio.h>
#include "cli/cli.h"

int cmd_check(int argc, char **argv)
{
	fprintf(stderr, "ferry check: not implemented yet\n");
	return 1;
}
