// SPDX-License-Identifier: Apache-2.0
/*
 * Helper for verify-process.js: thread-group corner cases.
 *   th-threads leader-exit CODE  the leader calls pthread_exit(); a second
 *                                thread exits the group later with exit(CODE)
 *   th-threads thread-exec PATH  a non-leader thread calls execv(PATH)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int code;
static const char *path;

static void *late_exit(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	exit(code);
}

static void *do_exec(void *arg)
{
	char *argv[] = { (char *)path, "from-thread", NULL };

	(void)arg;
	usleep(50 * 1000);
	execv(path, argv);
	perror("execv");
	exit(127);
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc == 3 && !strcmp(argv[1], "leader-exit")) {
		code = atoi(argv[2]);
		pthread_create(&t, NULL, late_exit, NULL);
		pthread_exit(NULL);
	}
	if (argc == 3 && !strcmp(argv[1], "thread-exec")) {
		path = argv[2];
		pthread_create(&t, NULL, do_exec, NULL);
		pause();
	}
	fprintf(stderr, "usage: %s leader-exit CODE | thread-exec PATH\n", argv[0]);
	return 2;
}
