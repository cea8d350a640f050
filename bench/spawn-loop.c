// SPDX-License-Identifier: Apache-2.0
/*
 * spawn-loop: fork + execve + waitpid of a tiny program N times, timed.
 * The exec benchmark (bench/exec.ts) runs it with and without the agent.
 *
 *   spawn-loop N [PATH]   (default PATH /bin/true)
 *   → {"n":N,"seconds":S,"rate":R,"usPerExec":U,"failures":F}
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000, i, failures = 0;
	char *path = argc > 2 ? argv[2] : "/bin/true";
	char *args[] = { path, NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", NULL };
	double t0, dt;

	t0 = now();
	for (i = 0; i < n; i++) {
		int status;
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			execve(path, args, envp);
			_exit(127);
		}
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failures++;
	}
	dt = now() - t0;
	printf("{\"n\":%ld,\"seconds\":%.6f,\"rate\":%.1f,\"usPerExec\":%.2f,\"failures\":%ld}\n",
	       n, dt, n / dt, dt * 1e6 / n, failures);
	return failures ? 1 : 0;
}
