// SPDX-License-Identifier: Apache-2.0
/*
 * spawn-loop: fork + execve + waitpid of a tiny program N times, timed.
 * The exec benchmark (bench/exec.ts) runs it with and without the agent.
 *
 *   spawn-loop N [PATH]   (default PATH /bin/true)
 *   → {"n":N,"seconds":S,"rate":R,"usPerExec":U,"cpuUsPerExec":C,"failures":F}
 *
 * cpuUsPerExec is the CPU time (user + sys) of this loop and its children per
 * iteration: BPF programs on the fork/exec/exit hooks run in these processes'
 * context, so their cost shows there even when the machine is busy with
 * other work (which inflates the wall-clock figure, not this one).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

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
	double t0, dt, c0, dc;

	c0 = cpu(RUSAGE_SELF) + cpu(RUSAGE_CHILDREN);
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
	dc = cpu(RUSAGE_SELF) + cpu(RUSAGE_CHILDREN) - c0;
	printf("{\"n\":%ld,\"seconds\":%.6f,\"rate\":%.1f,\"usPerExec\":%.2f,\"cpuUsPerExec\":%.2f,\"failures\":%ld}\n",
	       n, dt, n / dt, dt * 1e6 / n, dc * 1e6 / n, failures);
	return failures ? 1 : 0;
}
