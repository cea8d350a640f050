// SPDX-License-Identifier: Apache-2.0
/*
 * th-consumer: a plain C libbpf ring consumer.
 *
 *   bench mode (default): the baseline of the ring benchmark. Opens
 *     bpf/.output/bench.bpf.o, sets target_tgid = own pid and
 *     records_per_trigger, attaches, and consumes bench_events with
 *     ring_buffer__poll as fast as it can while a second thread keeps the ring
 *     fed by calling getppid(2) whenever there is room for one more trigger.
 *     Prints {"records","seconds","rate",...} as JSON.
 *
 *   print mode: opens bpf/.output/process.bpf.o (agent_tgid = own pid, maps
 *     pinned under --pin-root, removed at exit), attaches, and prints every
 *     tetrahub_events record as one JSON line. For checking the sensor by hand.
 *
 * Run from the repository root (default object paths are relative), as root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "tetrahub_events.h"

#define MAX_LINKS 16
#define MAX_SETS 16

static volatile sig_atomic_t stopping;

struct opts {
	const char *mode;
	const char *obj;
	const char *ring;
	const char *stats;
	const char *pin_root;
	const char *dump;
	double seconds;
	unsigned long long records;
	unsigned int per_trigger;
	unsigned long ring_bytes;
	unsigned int filter_pid;
	bool verbose;
	bool drain;
	int nsets;
	char *set_name[MAX_SETS];
	unsigned long long set_val[MAX_SETS];
};

static struct opts o = {
	.mode = "bench",
	.seconds = -1,
	.per_trigger = 1024,
};

/* ---- shared state between the consumer and the trigger thread ---- */
static unsigned long long consumed; /* records seen by the callback */
static unsigned long long consumed_bytes;
static unsigned long long triggers;
static unsigned long long trigger_ns;
static volatile int trigger_stop;
static unsigned long long ring_capacity_records;
static FILE *dump_f;

/* Appends a record framed like the native consumer: [u32 len][u32 ring 0][record][pad to 8]. */
static void dump_record(const void *data, size_t size)
{
	static const char zeros[8];
	uint32_t hdr[2] = { (uint32_t)size, 0 };

	fwrite(hdr, sizeof(hdr), 1, dump_f);
	fwrite(data, size, 1, dump_f);
	fwrite(zeros, (8 - (size & 7)) & 7, 1, dump_f);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !o.verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Sets a `const volatile` integer in .rodata by name, through the object's BTF. */
static int set_rodata(struct bpf_object *obj, const char *name, unsigned long long val)
{
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec, *var;
	struct bpf_map *map;
	size_t size = 0;
	const void *init = NULL;
	char *data;
	int id, i, err;

	bpf_object__for_each_map(map, obj) {
		const char *mn = bpf_map__name(map);
		size_t l = strlen(mn);

		if (bpf_map__is_internal(map) && l >= 7 && !strcmp(mn + l - 7, ".rodata")) {
			init = bpf_map__initial_value(map, &size);
			break;
		}
	}
	if (!init || !btf)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return -ENOENT;
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	data = malloc(size);
	if (!data)
		return -ENOMEM;
	memcpy(data, init, size);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		var = btf__type_by_id(btf, vs->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->offset + vs->size > size) {
			free(data);
			return -EINVAL;
		}
		switch (vs->size) {
		case 1: { uint8_t v = val; memcpy(data + vs->offset, &v, 1); break; }
		case 2: { uint16_t v = val; memcpy(data + vs->offset, &v, 2); break; }
		case 4: { uint32_t v = val; memcpy(data + vs->offset, &v, 4); break; }
		case 8: { uint64_t v = val; memcpy(data + vs->offset, &v, 8); break; }
		default: free(data); return -EINVAL;
		}
		/* libbpf 1.1 hands out a const view: write back a modified copy. */
		err = bpf_map__set_initial_value(map, data, size);
		free(data);
		return err;
	}
	free(data);
	return -ENOENT;
}

/* Sums struct th_stats over the possible CPUs. */
static int read_stats(struct bpf_object *obj, const char *name, struct th_stats *sum)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, name);
	int ncpu = libbpf_num_possible_cpus(), c, i;
	size_t stride = (sizeof(struct th_stats) + 7) & ~7UL;
	__u32 zero = 0;
	char *buf;

	memset(sum, 0, sizeof(*sum));
	if (!map || ncpu <= 0)
		return -ENOENT;
	buf = calloc(ncpu, stride);
	if (!buf)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(map), &zero, buf)) {
		free(buf);
		return -errno;
	}
	for (c = 0; c < ncpu; c++) {
		struct th_stats *s = (void *)(buf + c * stride);

		for (i = 0; i < TH_REC_MAX; i++) {
			sum->emitted[i] += s->emitted[i];
			sum->dropped[i] += s->dropped[i];
		}
		sum->procs_update_err += s->procs_update_err;
		sum->exit_unknown += s->exit_unknown;
	}
	free(buf);
	return 0;
}

/* ---------------------------- bench mode ---------------------------- */

static int bench_cb(void *ctx, void *data, size_t size)
{
	const struct th_hdr *h = data;

	(void)ctx;
	/* Touch the record like a real consumer would: type and size. */
	if (size >= sizeof(*h) && h->type == TH_REC_EXEC)
		consumed_bytes += h->size;
	__atomic_store_n(&consumed, consumed + 1, __ATOMIC_RELAXED);
	return 0;
}

static void *trigger_main(void *arg)
{
	unsigned long long k = o.per_trigger, t0;

	(void)arg;
	while (!trigger_stop) {
		unsigned long long produced = triggers * k;
		unsigned long long seen = __atomic_load_n(&consumed, __ATOMIC_RELAXED);

		if (produced - seen + k <= ring_capacity_records) {
			t0 = now_ns();
			syscall(SYS_getppid);
			trigger_ns += now_ns() - t0;
			triggers++;
		} else {
			sched_yield();
		}
	}
	return NULL;
}

/* ---------------------------- print mode ---------------------------- */

static void json_str(FILE *f, const unsigned char *s, size_t n)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int print_cb(void *ctx, void *data, size_t size)
{
	const struct th_hdr *h = data;
	FILE *f = stdout;

	(void)ctx;
	__atomic_store_n(&consumed, consumed + 1, __ATOMIC_RELAXED);
	if (dump_f)
		dump_record(data, size);
	if (size < sizeof(*h) || h->size > size) {
		fprintf(f, "{\"type\":\"bad\",\"len\":%zu}\n", size);
		return 0;
	}
	switch (h->type) {
	case TH_REC_EXEC: {
		const struct th_exec *e = data;
		const unsigned char *p = (const unsigned char *)data + sizeof(*e);
		size_t i, start, end;
		bool first = true;

		if (h->size < sizeof(*e) || sizeof(*e) + e->filename_len + e->args_len +
						    e->cwd_len + e->cgroup_name_len > h->size) {
			fprintf(f, "{\"type\":\"bad-exec\",\"len\":%zu}\n", size);
			return 0;
		}
		if (o.filter_pid && e->pid != o.filter_pid && e->ppid != o.filter_pid)
			return 0;
		fprintf(f, "{\"type\":\"exec\",\"ktime\":%llu,\"pid\":%u,\"tid\":%u,\"ppid\":%u,"
			   "\"parentKtime\":%llu,\"flags\":\"0x%x\",\"uid\":%u,\"gid\":%u,\"euid\":%u,"
			   "\"egid\":%u,\"auid\":%u,\"cgroupId\":%llu,\"size\":%u,\"filename\":",
			(unsigned long long)h->ktime, e->pid, e->tid, e->ppid,
			(unsigned long long)e->parent_ktime, e->flags, e->uid, e->gid, e->euid,
			e->egid, e->auid, (unsigned long long)e->cgroup_id, h->size);
		json_str(f, p, e->filename_len);
		p += e->filename_len;
		fputs(",\"argv\":[", f);
		for (start = 0, i = 0; i <= e->args_len; i++) {
			if (i == e->args_len && start == i)
				break;
			if (i == e->args_len || p[i] == 0) {
				end = i;
				if (!first)
					fputc(',', f);
				json_str(f, p + start, end - start);
				first = false;
				start = i + 1;
			}
		}
		fputs("],\"cwd\":", f);
		p += e->args_len;
		json_str(f, p, e->cwd_len);
		p += e->cwd_len;
		fputs(",\"cgroup\":", f);
		json_str(f, p, e->cgroup_name_len);
		fputs("}\n", f);
		break;
	}
	case TH_REC_CLONE: {
		const struct th_clone *c = data;

		if (o.filter_pid && c->pid != o.filter_pid && c->ppid != o.filter_pid)
			return 0;
		fprintf(f, "{\"type\":\"clone\",\"ktime\":%llu,\"pid\":%u,\"tid\":%u,\"ppid\":%u,"
			   "\"parentKtime\":%llu,\"flags\":\"0x%x\"}\n",
			(unsigned long long)h->ktime, c->pid, c->tid, c->ppid,
			(unsigned long long)c->parent_ktime, c->flags);
		break;
	}
	case TH_REC_EXIT: {
		const struct th_exit *x = data;

		if (o.filter_pid && x->pid != o.filter_pid)
			return 0;
		fprintf(f, "{\"type\":\"exit\",\"ktime\":%llu,\"procKtime\":%llu,\"pid\":%u,\"tid\":%u,"
			   "\"code\":%u,\"status\":%u,\"signal\":%u}\n",
			(unsigned long long)h->ktime, (unsigned long long)x->proc_ktime, x->pid,
			x->tid, x->code, (x->code >> 8) & 0xff, x->code & 0x7f);
		break;
	}
	default:
		fprintf(f, "{\"type\":\"unknown\",\"rtype\":%u,\"len\":%zu}\n", h->type, size);
	}
	fflush(f);
	return 0;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--mode bench|print] [--obj PATH] [--ring NAME] [--seconds S]\n"
		"          [--records N] [--per-trigger K] [--ring-bytes B] [--pin-root DIR]\n"
		"          [--pid PID] [--set VAR=VALUE]... [--drain] [--dump FILE] [--verbose]\n"
		"  bench: defaults --obj bpf/.output/bench.bpf.o --ring bench_events --seconds 5\n"
		"         (a trigger thread keeps the ring fed while the main thread consumes);\n"
		"         --drain: fill the ring, then time only the draining (consumer-bound)\n"
		"  print: defaults --obj bpf/.output/process.bpf.o --ring tetrahub_events\n"
		"         --pin-root /sys/fs/bpf/th-consumer (removed at exit), runs until\n"
		"         SIGINT/--seconds/--records; --pid filters on pid/ppid; --dump writes\n"
		"         every record framed like the native consumer ([u32 len][u32 0][rec][pad8]).\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mode", required_argument, 0, 'm' },
		{ "obj", required_argument, 0, 'o' },
		{ "ring", required_argument, 0, 'r' },
		{ "seconds", required_argument, 0, 's' },
		{ "records", required_argument, 0, 'n' },
		{ "per-trigger", required_argument, 0, 'k' },
		{ "ring-bytes", required_argument, 0, 'b' },
		{ "pin-root", required_argument, 0, 'p' },
		{ "pid", required_argument, 0, 'P' },
		{ "set", required_argument, 0, 'S' },
		{ "verbose", no_argument, 0, 'v' },
		{ "drain", no_argument, 0, 'd' },
		{ "dump", required_argument, 0, 'D' },
		{ "help", no_argument, 0, 'h' },
		{ 0 },
	};
	struct bpf_link *links[MAX_LINKS];
	struct bpf_program *prog;
	struct ring_buffer *rb = NULL;
	struct bpf_object *obj;
	struct bpf_map *ring;
	struct th_stats st;
	pthread_t thr;
	bool bench, pinned_dir_created = false;
	int nlinks = 0, c, err, i, ret = 1;
	double t0, t1, deadline;
	unsigned long long counted;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o.mode = optarg; break;
		case 'o': o.obj = optarg; break;
		case 'r': o.ring = optarg; break;
		case 's': o.seconds = atof(optarg); break;
		case 'n': o.records = strtoull(optarg, NULL, 0); break;
		case 'k': o.per_trigger = strtoul(optarg, NULL, 0); break;
		case 'b': o.ring_bytes = strtoul(optarg, NULL, 0); break;
		case 'p': o.pin_root = optarg; break;
		case 'P': o.filter_pid = strtoul(optarg, NULL, 0); break;
		case 'S': {
			char *eq = strchr(optarg, '=');

			if (!eq || o.nsets == MAX_SETS) {
				usage(argv[0]);
				return 2;
			}
			*eq = 0;
			o.set_name[o.nsets] = optarg;
			o.set_val[o.nsets++] = strtoull(eq + 1, NULL, 0);
			break;
		}
		case 'v': o.verbose = true; break;
		case 'd': o.drain = true; break;
		case 'D': o.dump = optarg; break;
		default: usage(argv[0]); return c == 'h' ? 0 : 2;
		}
	}
	bench = !strcmp(o.mode, "bench");
	if (!bench && strcmp(o.mode, "print")) {
		usage(argv[0]);
		return 2;
	}
	if (!o.obj)
		o.obj = bench ? "bpf/.output/bench.bpf.o" : "bpf/.output/process.bpf.o";
	if (!o.ring)
		o.ring = bench ? "bench_events" : "tetrahub_events";
	o.stats = bench ? "bench_stats" : "tetrahub_stats";
	if (o.seconds < 0)
		o.seconds = bench ? 5 : 0;
	if (!o.pin_root && !bench)
		o.pin_root = "/sys/fs/bpf/th-consumer";

	if (o.dump && !(dump_f = fopen(o.dump, "w"))) {
		perror(o.dump);
		return 1;
	}
	libbpf_set_print(print_fn);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (o.pin_root && mkdir(o.pin_root, 0700) == 0)
		pinned_dir_created = true;
	{
		LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o.pin_root);
		obj = bpf_object__open_file(o.obj, &oo);
	}
	if (!obj) {
		fprintf(stderr, "open %s: %s\n", o.obj, strerror(errno));
		return 1;
	}
	ring = bpf_object__find_map_by_name(obj, o.ring);
	if (!ring) {
		fprintf(stderr, "no ring map %s in %s\n", o.ring, o.obj);
		goto out;
	}
	if (o.ring_bytes && (err = bpf_map__set_max_entries(ring, o.ring_bytes))) {
		fprintf(stderr, "ring size: %s\n", strerror(-err));
		goto out;
	}
	if (bench) {
		if (set_rodata(obj, "target_tgid", getpid()) ||
		    set_rodata(obj, "records_per_trigger", o.per_trigger)) {
			fprintf(stderr, "cannot set bench rodata\n");
			goto out;
		}
	} else {
		set_rodata(obj, "agent_tgid", getpid());
	}
	for (i = 0; i < o.nsets; i++) {
		if ((err = set_rodata(obj, o.set_name[i], o.set_val[i]))) {
			fprintf(stderr, "--set %s: %s\n", o.set_name[i], strerror(-err));
			goto out;
		}
	}
	if ((err = bpf_object__load(obj))) {
		fprintf(stderr, "load %s: %s\n", o.obj, strerror(-err));
		goto out;
	}
	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *l = bpf_program__attach(prog);

		if (!l) {
			fprintf(stderr, "attach %s: %s\n", bpf_program__name(prog), strerror(errno));
			goto out;
		}
		if (nlinks < MAX_LINKS)
			links[nlinks++] = l;
	}
	rb = ring_buffer__new(bpf_map__fd(ring), bench ? bench_cb : print_cb, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		goto out;
	}

	if (bench) {
		/* ring bytes / (record + 8-byte ring header, 8-aligned) */
		size_t rec = (sizeof(struct th_exec) + 144 + 8 + 7) & ~7UL;

		ring_capacity_records = bpf_map__max_entries(ring) / rec;
		if (ring_capacity_records < o.per_trigger) {
			fprintf(stderr, "ring too small for %u records per trigger\n", o.per_trigger);
			goto out;
		}
		if (o.drain) {
			/*
			 * Consumer-only rate: fill the ring (no consumer running), then
			 * time ring_buffer__consume draining it; repeat.
			 */
			unsigned long long fills = ring_capacity_records / o.per_trigger, f;
			double busy = 0, start = now_s(), ts;

			while (!stopping && now_s() - start < o.seconds &&
			       (!o.records || consumed < o.records)) {
				for (f = 0; f < fills; f++) {
					unsigned long long tn = now_ns();

					syscall(SYS_getppid);
					trigger_ns += now_ns() - tn;
					triggers++;
				}
				ts = now_s();
				ring_buffer__consume(rb);
				busy += now_s() - ts;
			}
			read_stats(obj, o.stats, &st);
			printf("{\"mode\":\"drain\",\"records\":%llu,\"seconds\":%.6f,\"rate\":%.0f,"
			       "\"recordBytes\":%zu,\"perTrigger\":%u,\"triggers\":%llu,"
			       "\"producerRate\":%.0f,\"emitted\":%llu,\"drops\":%llu}\n",
			       consumed, busy, consumed / busy, sizeof(struct th_exec) + 140,
			       o.per_trigger, triggers,
			       triggers * (double)o.per_trigger / (trigger_ns / 1e9),
			       (unsigned long long)st.emitted[TH_REC_EXEC],
			       (unsigned long long)st.dropped[TH_REC_EXEC]);
			ret = 0;
			goto out;
		}
		t0 = now_s();
		deadline = o.seconds > 0 ? t0 + o.seconds : 0;
		pthread_create(&thr, NULL, trigger_main, NULL);
		for (;;) {
			err = ring_buffer__poll(rb, 100);
			if (err < 0 && err != -EINTR) {
				fprintf(stderr, "poll: %d\n", err);
				break;
			}
			if (stopping || (o.records && consumed >= o.records) ||
			    (deadline && now_s() >= deadline))
				break;
		}
		t1 = now_s();
		counted = consumed;
		trigger_stop = 1;
		pthread_join(thr, NULL);
		ring_buffer__consume(rb);
		read_stats(obj, o.stats, &st);
		printf("{\"records\":%llu,\"seconds\":%.6f,\"rate\":%.0f,\"bytes\":%llu,"
		       "\"recordBytes\":%zu,\"perTrigger\":%u,\"triggers\":%llu,"
		       "\"producerRate\":%.0f,\"emitted\":%llu,\"drops\":%llu,\"drained\":%llu}\n",
		       counted, t1 - t0, counted / (t1 - t0), consumed_bytes,
		       sizeof(struct th_exec) + 140, o.per_trigger, triggers,
		       trigger_ns ? triggers * (double)o.per_trigger / (trigger_ns / 1e9) : 0.0,
		       (unsigned long long)st.emitted[TH_REC_EXEC],
		       (unsigned long long)st.dropped[TH_REC_EXEC], consumed - counted);
	} else {
		fprintf(stderr, "attached %d programs; printing %s records\n", nlinks, o.ring);
		t0 = now_s();
		deadline = o.seconds > 0 ? t0 + o.seconds : 0;
		while (!stopping) {
			err = ring_buffer__poll(rb, 100);
			if (err < 0 && err != -EINTR)
				break;
			if ((o.records && consumed >= o.records) || (deadline && now_s() >= deadline))
				break;
		}
		ring_buffer__consume(rb);
		read_stats(obj, o.stats, &st);
		fprintf(stderr, "{\"stats\":{\"emitted\":[");
		for (i = 0; i < TH_REC_MAX; i++)
			fprintf(stderr, "%s%llu", i ? "," : "", (unsigned long long)st.emitted[i]);
		fprintf(stderr, "],\"dropped\":[");
		for (i = 0; i < TH_REC_MAX; i++)
			fprintf(stderr, "%s%llu", i ? "," : "", (unsigned long long)st.dropped[i]);
		fprintf(stderr, "],\"procsUpdateErr\":%llu,\"exitUnknown\":%llu}}\n",
			(unsigned long long)st.procs_update_err,
			(unsigned long long)st.exit_unknown);
	}
	ret = 0;
out:
	ring_buffer__free(rb);
	for (i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	if (o.pin_root && !bench) {
		bpf_object__unpin_maps(obj, NULL);
		if (pinned_dir_created)
			rmdir(o.pin_root);
	}
	bpf_object__close(obj);
	if (dump_f)
		fclose(dump_f);
	return ret;
}
