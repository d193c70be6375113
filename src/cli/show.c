#include <stdio.h>
#include "cli/cli.h"

int cmd_show(int argc, char **argv)
{
	fprintf(stderr, "ferry show: not implemented yet\n");
	return 1;
}
