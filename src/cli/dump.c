#include <stdio.h>
#include "cli/cli.h"

int cmd_dump(int argc, char **argv)
{
	fprintf(stderr, "ferry dump: not implemented yet\n");
	return 1;
}
