#include <stdio.h>
#include "cli/cli.h"

int cmd_restore(int argc, char **argv)
{
	fprintf(stderr, "ferry restore: not implemented yet\n");
	return 1;
}
