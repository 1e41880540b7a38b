/* bench.c - libmmapfile against the calls it replaces.
 *
 * Every workload creates its own data in a fresh directory (--dir, default
 * $TMPDIR or /tmp), warms the page cache, then runs its contenders in turn,
 * A B A B ..., for --rounds rounds after one untimed warm-up round, and keeps
 * the median.  Every run is checked: reads against a checksum computed from
 * the data the file was made of, writes by reading the file back after close
 * (size and contents).  A run that fails its check fails the workload.
 * See bench/README.md for the workloads, the ratios and the goals.
 */
#define _GNU_SOURCE
#include "costs.h"
#include "mmapfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#if !defined(BENCH_NO_URING) && defined(__has_include)
#if __has_include(<liburing.h>)
#include <liburing.h>
#define BENCH_URING 1
#endif
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* The data every file is made of: POOL_MAIN random bytes (a power of two,
 * so positions wrap with a mask), followed by a copy of its first POOL_PAD
 * bytes so that any chunk of up to POOL_PAD bytes may start anywhere. */
#define POOL_MAIN (64 * MiB)
#define POOL_PAD MiB
#define POOL_MASK ((uint64_t)POOL_MAIN - 1)

#define MAXC 5         /* contenders per workload */
#define URING_BATCH 32 /* reads per io_uring submission */
#define SYNC_REPS 32   /* write + sync pairs per sync sample */

static struct {
	const char *dir;
	int rounds;
	double scale;
	bool json, quiet, warmup;
	const char *only, *json_file;
	uint64_t seed;
} opt = {.rounds = 11, .scale = 1.0, .warmup = true, .seed = 0x6d6d61706669ULL};

static char *workdir;
static uint8_t *pool;
static uint8_t *bigbuf; /* 1 MiB, for chunk reads and read-backs */
static char errbuf[512];

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The process's CPU time (every thread's), ns. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A run's timed span: t_start() where it starts, t_stop(t0) its wall time;
 * run_cpu is then the CPU time the process spent in it. */
static uint64_t run_cpu0, run_cpu;

static uint64_t t_start(void)
{
	run_cpu0 = cpu_ns();
	return now_ns();
}

static uint64_t t_stop(uint64_t t0)
{
	uint64_t ns = now_ns() - t0;
	run_cpu = cpu_ns() - run_cpu0;
	return ns;
}

static void progress(const char *fmt, ...)
{
	if (opt.quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Record why a run failed; returns -1. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

static int fail_errno(const char *what, const char *path)
{
	return fail("%s(%s): %s", what, path, strerror(errno));
}

static void rm_tree(const char *dir);

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (workdir)
		rm_tree(workdir);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = aligned_alloc(4096, (n + 4095) & ~(size_t)4095);
	if (!p)
		die("out of memory (%zu bytes)", n);
	memset(p, 0, n);
	return p;
}

static char *data_path(const char *name)
{
	size_t n = strlen(workdir) + strlen(name) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s", workdir, name);
	return p;
}

static inline uint64_t load64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* Keep the compiler from dropping or reordering stores into buf. */
static inline void clobber(void *buf)
{
	__asm__ volatile("" : : "r"(buf) : "memory");
}

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state += 0x9e3779b97f4a7c15ULL;
	return mix64(rng_state);
}

/* Data size scaled by --scale / --quick, a multiple of align, at least min. */
static size_t scaled(size_t base, size_t min, size_t align)
{
	double v = (double)base * opt.scale;
	size_t n = v < (double)min ? min : (size_t)v;
	n -= n % align;
	return n < min ? min : n;
}

static const char *human(size_t n, char *buf, size_t len)
{
	if (n >= GiB && n % GiB == 0)
		snprintf(buf, len, "%zu GiB", n / GiB);
	else if (n >= MiB && n % MiB == 0)
		snprintf(buf, len, "%zu MiB", n / MiB);
	else if (n >= KiB && n % KiB == 0)
		snprintf(buf, len, "%zu KiB", n / KiB);
	else
		snprintf(buf, len, "%zu B", n);
	return buf;
}

/* The data: a file is the pool repeated (byte o of a file is pool[o mod
 * POOL_MAIN]); records written by the append workloads are taken from the
 * pool in sequence or at hashed positions. */
static inline const uint8_t *src_linear(uint64_t i, size_t rec)
{
	return pool + ((i * rec) & POOL_MASK);
}

static inline const uint8_t *src_hashed(uint64_t i, uint64_t salt)
{
	return pool + (mix64(i ^ (salt << 40)) & POOL_MASK & ~(uint64_t)63);
}

/* What the read workloads add up for each record read: its first and last
 * words (enough to keep every read and to catch a wrong offset or a short
 * copy, cheap enough not to weigh on the timings). */
static inline uint64_t rec_sum(const void *buf, size_t len)
{
	return load64(buf) + load64((const uint8_t *)buf + len - 8);
}

/* The same for the record of len bytes at offset off of a file made by
 * make_file: the oracle the reads are checked against. */
static inline uint64_t file_rec_sum(uint64_t off, size_t len)
{
	return load64(pool + (off & POOL_MASK)) + load64(pool + ((off + len - 8) & POOL_MASK));
}

/* A fast position-dependent hash of a byte stream fed in multiples of 32
 * bytes: four lanes of multiply-xor, so that it runs at memory speed. */
struct hash {
	uint64_t h[4];
	uint64_t len;
};

static void hash_init(struct hash *s)
{
	for (int j = 0; j < 4; j++)
		s->h[j] = 0x243f6a8885a308d3ULL * (uint64_t)(j + 1);
	s->len = 0;
}

static void hash_update(struct hash *s, const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	for (size_t i = 0; i + 32 <= n; i += 32) {
		a = ((a ^ load64(p + i)) * 0x9e3779b97f4a7c15ULL);
		b = ((b ^ load64(p + i + 8)) * 0xc2b2ae3d27d4eb4fULL);
		c = ((c ^ load64(p + i + 16)) * 0x165667b19e3779f9ULL);
		d = ((d ^ load64(p + i + 24)) * 0xd6e8feb86659fd93ULL);
		a ^= a >> 29;
		b ^= b >> 31;
		c ^= c >> 27;
		d ^= d >> 33;
	}
	s->h[0] = a, s->h[1] = b, s->h[2] = c, s->h[3] = d;
	s->len += n;
}

static uint64_t hash_final(const struct hash *s)
{
	uint64_t x = s->len;
	for (int j = 0; j < 4; j++)
		x = mix64(x ^ s->h[j]);
	return x;
}

static int read_full(int fd, void *buf, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* Create path with size bytes of the pool repeated, on stable storage (so
 * that writeback of the setup does not run during the timings). */
static void make_file(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open(%s): %s", path, strerror(errno));
	for (size_t off = 0; off < size; off += MiB) {
		size_t n = size - off < MiB ? size - off : MiB;
		if (write_full(fd, pool + (off & POOL_MASK), n) != 0)
			die("write(%s): %s", path, strerror(errno));
	}
	if (fsync(fd) != 0 || close(fd) != 0)
		die("fsync(%s): %s", path, strerror(errno));
}

/* Read the whole file once, so that the timed reads find it cached. */
static void warm_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open(%s): %s", path, strerror(errno));
	ssize_t r;
	while ((r = read(fd, bigbuf, MiB)) > 0)
		;
	if (r < 0)
		die("read(%s): %s", path, strerror(errno));
	close(fd);
}

/* The check after a write workload: the file is exactly size bytes and its
 * contents hash to expect. */
static int verify_file(const char *path, size_t size, uint64_t expect)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return fail_errno("stat", path);
	if ((size_t)st.st_size != size)
		return fail("%s: %jd bytes after close, expected %zu", path, (intmax_t)st.st_size, size);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno("open", path);
	struct hash h;
	hash_init(&h);
	for (size_t off = 0; off < size; off += MiB) {
		size_t n = size - off < MiB ? size - off : MiB;
		if (read_full(fd, bigbuf, n, (off_t)off) != 0) {
			close(fd);
			return fail_errno("read back", path);
		}
		hash_update(&h, bigbuf, n);
	}
	close(fd);
	if (hash_final(&h) != expect)
		return fail("%s: contents differ from what was written", path);
	return 0;
}

/* Remove everything under dir (two levels: the data files and the small
 * files' directory), and dir itself unless keep. */
static void rm_tree_keep(const char *dir, bool keep)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), e->d_name, 0) != 0 && (errno == EISDIR || errno == EPERM)) {
				size_t n = strlen(dir) + strlen(e->d_name) + 2;
				char *sub = malloc(n);
				if (sub) {
					snprintf(sub, n, "%s/%s", dir, e->d_name);
					rm_tree_keep(sub, false);
					free(sub);
				}
			}
		}
		closedir(d);
	}
	if (!keep)
		rmdir(dir);
}

static void rm_tree(const char *dir)
{
	rm_tree_keep(dir, false);
}

static void on_signal(int sig)
{
	static const char msg[] = "bench: interrupted, removing the data\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	if (workdir)
		rm_tree(workdir);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- workloads ---------------------------------------------------------- */

struct ratio {
	int a, b;         /* value = (time of a per unit) / (time of b per unit) */
	int row;          /* the contender it is printed with */
	bool cost;        /* a cost ratio (smaller is better), else a speedup */
	double goal;      /* 0: none */
	const char *name; /* short name, for the JSON and the chart */
	const char *what; /* what it means, in words */
	double value;
	int met; /* -1: no goal */
};

struct workload {
	const char *id;
	const char *desc;
	int ncont;
	const char *cname[MAXC];
	const char *unit; /* "op", "B" or "file" */
	int nratio;
	struct ratio ratio[MAXC];
	int (*setup)(struct workload *);
	int (*run)(struct workload *, int c, uint64_t *ns);
	void (*teardown)(struct workload *);
	/* Filled by setup. */
	char detail[160];
	char note[400]; /* a remark on the results, or empty */
	double units[MAXC]; /* ops or bytes per run */
	uint64_t expect;    /* the read workloads' checksum */
	/* Results. */
	bool selected, ran, failed, skipped; /* setup returned 1: skipped, error says why */
	char error[sizeof errbuf + 64];
	uint64_t *samples[MAXC];
	uint64_t *cpu[MAXC]; /* the process's CPU time in each timed span */
	int nsamples;
	double median[MAXC], cpu_median[MAXC];
};

static double median(const uint64_t *s, int n);

static int check_sum(const struct workload *w, uint64_t sum)
{
	if (sum != w->expect)
		return fail("checksum %016" PRIx64 ", expected %016" PRIx64 ": the data read is wrong", sum,
		            w->expect);
	return 0;
}

/* -- sequential 64-byte records: mmapfile_read vs fread, fread_unlocked, and
 * the limits (a raw mapping, a bare cursor call) ------------------------------ */

static struct {
	char *path;
	size_t size;
} s64;

/* The limit of the read workloads: the file mapped whole, read-only, as a
 * program would map it by hand.  Returns the descriptor, -1 on failure. */
static int map_whole(const char *path, size_t size, const uint8_t **p)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno("open", path);
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size != size) {
		close(fd);
		return fail("fstat(%s): wrong size", path);
	}
	*p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (*p == MAP_FAILED) {
		close(fd);
		return fail_errno("mmap", path);
	}
	return fd;
}

static double per_unit(const struct workload *w, int c)
{
	return w->median[c] / w->units[c];
}

/* What a limit contender itself achieves against the goal's baseline, and
 * how much of its speed libmmapfile reaches: a goal past the limit is out
 * of any library's reach over a mapping. */
static void limit_note(struct workload *w, int limit, int base, const char *name, double goal)
{
	if (!w->ran || per_unit(w, limit) <= 0 || per_unit(w, 0) <= 0)
		return;
	size_t len = strlen(w->note);
	snprintf(w->note + len, sizeof w->note - len,
	         "%s%s: %.2fx %s (goal for libmmapfile %.1fx), and libmmapfile reaches %.0f%% of its speed",
	         len ? "; " : "the limits against their baseline: ", w->cname[limit],
	         per_unit(w, base) / per_unit(w, limit), name, goal, 100 * per_unit(w, limit) / per_unit(w, 0));
}

/* The least a read call with a cursor over a mapping does: refuse what is
 * out of bounds, copy, advance.  No fault guard, no thread safety, no
 * error numbers: the limit for a call, where the raw mapping is the limit
 * for a loop that indexes the mapping itself. */
struct bare_cursor {
	const uint8_t *base;
	size_t size, pos;
};

static __attribute__((noinline)) size_t bare_read(struct bare_cursor *c, void *buf, size_t n)
{
	if (c->pos >= c->size || n > c->size - c->pos)
		return 0;
	const uint8_t *s = c->base + c->pos;
	uint8_t *d = buf;
	if (n >= 32 && n <= 64) { /* two overlapping 32-byte moves, in registers */
		typedef uint8_t v16 __attribute__((vector_size(16), aligned(1), may_alias));
		v16 a0 = *(const v16 *)s, a1 = *(const v16 *)(s + 16);
		v16 b0 = *(const v16 *)(s + n - 32), b1 = *(const v16 *)(s + n - 16);
		*(v16 *)d = a0;
		*(v16 *)(d + 16) = a1;
		*(v16 *)(d + n - 32) = b0;
		*(v16 *)(d + n - 16) = b1;
	} else {
		memcpy(d, s, n);
	}
	c->pos += n;
	return n;
}

static void seq64_teardown(struct workload *w)
{
	limit_note(w, 3, 1, "fread", 1.8);
	limit_note(w, 4, 1, "fread", 1.8);
}

static void seq64lib_teardown(struct workload *w)
{
	limit_note(w, 3, 1, "fread", 4.0);
	limit_note(w, 4, 1, "fread", 4.0);
}

static int seq64_setup(struct workload *w)
{
	char h[32];
	s64.size = scaled(64 * MiB, MiB, 64);
	s64.path = data_path("seq64.dat");
	make_file(s64.path, s64.size);
	warm_file(s64.path);
	size_t recs = s64.size / 64;
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)recs;
	w->expect = 0;
	for (size_t i = 0; i < recs; i++)
		w->expect += file_rec_sum(i * 64, 64);
	snprintf(w->detail, sizeof w->detail, "%s file, %zu records", human(s64.size, h, sizeof h), recs);
	return 0;
}

/* The same records in a file the library wrote, 64 bytes at a time through
 * its mapping (so the page cache's folios are what its huge-page mapping
 * made of them, not what write(2) in 1 MiB chunks makes). */
static int seq64lib_setup(struct workload *w)
{
	char h[32];
	s64.size = scaled(64 * MiB, MiB, 64);
	s64.path = data_path("seq64lib.dat");
	mmapfile_t *f = mmapfile_open(s64.path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!f)
		return fail_errno("mmapfile_open", s64.path);
	size_t recs = s64.size / 64;
	for (size_t i = 0; i < recs; i++)
		if (mmapfile_write(f, src_linear(i, 64), 64) != 64) {
			mmapfile_close(f);
			return fail_errno("mmapfile_write", s64.path);
		}
	if (mmapfile_sync(f) != 0 || mmapfile_close(f) != 0)
		return fail_errno("mmapfile_close", s64.path);
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)recs;
	w->expect = 0;
	for (size_t i = 0; i < recs; i++)
		w->expect += file_rec_sum(i * 64, 64);
	snprintf(w->detail, sizeof w->detail, "%s file written by mmapfile_write, %zu records",
	         human(s64.size, h, sizeof h), recs);
	return 0;
}

static int seq64_run(struct workload *w, int c, uint64_t *ns)
{
	unsigned char buf[64] __attribute__((aligned(64)));
	size_t recs = s64.size / 64;
	const char *path = s64.path;
	uint64_t sum = 0;
	uint64_t t0 = t_start();
	if (c == 0) {
		mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
		if (!f)
			return fail_errno("mmapfile_open", path);
		for (size_t i = 0; i < recs; i++) {
			if (mmapfile_read(f, buf, 64) != 64) {
				mmapfile_close(f);
				return fail("mmapfile_read: short read at record %zu", i);
			}
			sum += rec_sum(buf, 64);
		}
		ssize_t k = mmapfile_read(f, buf, 64);
		if (mmapfile_close(f) != 0 || k != 0)
			return fail("mmapfile_read: no end of file after the last record");
	} else if (c == 3) {
		const uint8_t *p;
		int fd = map_whole(path, s64.size, &p);
		if (fd < 0)
			return -1;
		for (size_t i = 0; i < recs; i++) {
			memcpy(buf, p + i * 64, 64);
			clobber(buf);
			sum += rec_sum(buf, 64);
		}
		munmap((void *)p, s64.size);
		close(fd);
	} else if (c == 4) {
		struct bare_cursor cur = {.size = s64.size};
		int fd = map_whole(path, s64.size, &cur.base);
		if (fd < 0)
			return -1;
		for (size_t i = 0; i < recs; i++) {
			if (bare_read(&cur, buf, 64) != 64) {
				munmap((void *)cur.base, s64.size);
				close(fd);
				return fail("bare cursor: short read at record %zu", i);
			}
			sum += rec_sum(buf, 64);
		}
		munmap((void *)cur.base, s64.size);
		close(fd);
	} else {
		FILE *fp = fopen(path, "rb");
		if (!fp)
			return fail_errno("fopen", path);
		if (c == 1) {
			for (size_t i = 0; i < recs; i++) {
				if (fread(buf, 1, 64, fp) != 64) {
					fclose(fp);
					return fail("fread: short read at record %zu", i);
				}
				sum += rec_sum(buf, 64);
			}
		} else {
			for (size_t i = 0; i < recs; i++) {
				if (fread_unlocked(buf, 1, 64, fp) != 64) {
					fclose(fp);
					return fail("fread_unlocked: short read at record %zu", i);
				}
				sum += rec_sum(buf, 64);
			}
		}
		size_t k = fread(buf, 1, 64, fp);
		if (fclose(fp) != 0 || k != 0)
			return fail("fread: no end of file after the last record");
	}
	*ns = t_stop(t0);
	return check_sum(w, sum);
}

/* -- sequential 1 MiB chunks: mmapfile_read vs read(2), raw mapping ------- */

static struct {
	char *path;
	size_t size;
} s1m;

/* A warm file of size bytes read in 1 MiB chunks: units are bytes, and the
 * checksum the chunks' record sums. */
static char *chunked_setup(struct workload *w, const char *name, size_t size)
{
	char *path = data_path(name);
	make_file(path, size);
	warm_file(path);
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)size;
	w->expect = 0;
	for (size_t off = 0; off < size; off += MiB)
		w->expect += file_rec_sum(off, MiB);
	return path;
}

static int seq1m_setup(struct workload *w)
{
	char h[32];
	s1m.size = scaled(512 * MiB, 16 * MiB, MiB);
	s1m.path = chunked_setup(w, "seq1m.dat", s1m.size);
	snprintf(w->detail, sizeof w->detail, "%s file, %zu chunks", human(s1m.size, h, sizeof h),
	         s1m.size / MiB);
	return 0;
}

static int seq1m_run(struct workload *w, int c, uint64_t *ns)
{
	const char *path = s1m.path;
	size_t chunks = s1m.size / MiB;
	uint8_t *buf = bigbuf;
	uint64_t sum = 0;
	uint64_t t0 = t_start();
	if (c == 0) {
		mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
		if (!f)
			return fail_errno("mmapfile_open", path);
		for (size_t i = 0; i < chunks; i++) {
			if (mmapfile_read(f, buf, MiB) != (ssize_t)MiB) {
				mmapfile_close(f);
				return fail("mmapfile_read: short read at chunk %zu", i);
			}
			sum += rec_sum(buf, MiB);
		}
		ssize_t k = mmapfile_read(f, buf, MiB);
		if (mmapfile_close(f) != 0 || k != 0)
			return fail("mmapfile_read: no end of file after the last chunk");
	} else if (c == 1) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail_errno("open", path);
		for (size_t i = 0; i < chunks; i++) {
			if (read(fd, buf, MiB) != (ssize_t)MiB) {
				close(fd);
				return fail("read: short read at chunk %zu", i);
			}
			sum += rec_sum(buf, MiB);
		}
		ssize_t k = read(fd, buf, MiB);
		if (close(fd) != 0 || k != 0)
			return fail("read: no end of file after the last chunk");
	} else {
		const uint8_t *p;
		int fd = map_whole(path, s1m.size, &p);
		if (fd < 0)
			return -1;
		for (size_t i = 0; i < chunks; i++) {
			memcpy(buf, p + i * MiB, MiB);
			clobber(buf);
			sum += rec_sum(buf, MiB);
		}
		munmap((void *)p, s1m.size);
		close(fd);
	}
	*ns = t_stop(t0);
	return check_sum(w, sum);
}

/* -- the same file re-read through a warm handle: mmapfile_readat vs memcpy
 * from a raw mapping already touched (the limit) ---------------------------- */

static struct {
	char *path;
	size_t size;
} rr;

static int reread_setup(struct workload *w)
{
	char h[32];
	rr.size = scaled(256 * MiB, 16 * MiB, MiB);
	rr.path = chunked_setup(w, "reread.dat", rr.size);
	snprintf(w->detail, sizeof w->detail, "%s file, read twice untimed first", human(rr.size, h, sizeof h));
	return 0;
}

static int reread_run(struct workload *w, int c, uint64_t *ns)
{
	uint8_t *buf = bigbuf;
	uint64_t sum = 0, t0 = 0;
	if (c == 0) {
		mmapfile_t *f = mmapfile_open(rr.path, O_RDONLY, 0);
		if (!f)
			return fail_errno("mmapfile_open", rr.path);
		for (int pass = 0; pass < 3; pass++) {
			if (pass == 2)
				t0 = t_start();
			for (size_t off = 0; off < rr.size; off += MiB) {
				if (mmapfile_readat(f, buf, MiB, (off_t)off) != (ssize_t)MiB) {
					mmapfile_close(f);
					return fail("mmapfile_readat: short read at %zu", off);
				}
				if (pass == 2)
					sum += rec_sum(buf, MiB);
			}
		}
		*ns = t_stop(t0);
		if (mmapfile_close(f) != 0)
			return fail_errno("mmapfile_close", rr.path);
	} else {
		const uint8_t *p;
		int fd = map_whole(rr.path, rr.size, &p);
		if (fd < 0)
			return -1;
		for (int pass = 0; pass < 3; pass++) {
			if (pass == 2)
				t0 = t_start();
			for (size_t off = 0; off < rr.size; off += MiB) {
				memcpy(buf, p + off, MiB);
				clobber(buf);
				if (pass == 2)
					sum += rec_sum(buf, MiB);
			}
		}
		*ns = t_stop(t0);
		munmap((void *)p, rr.size);
		close(fd);
	}
	return check_sum(w, sum);
}

/* -- a cold cache: the file's pages dropped before each run (fdatasync, then
 * POSIX_FADV_DONTNEED), read in 1 MiB chunks or at random 4 KiB pages ----- */

static struct {
	char *path;
	size_t size, n;
	off_t *off;
} cold;

static int drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno("open", path);
	int rc = fdatasync(fd) == 0 ? posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) : errno;
	close(fd);
	return rc ? fail("dropping %s from the page cache: %s", path, strerror(rc)) : 0;
}

static int cold_setup(struct workload *w, bool random)
{
	char h[32];
	cold.size = scaled(256 * MiB, 16 * MiB, MiB);
	cold.path = data_path("cold.dat");
	make_file(cold.path, cold.size);
	w->expect = 0;
	if (random) {
		cold.n = scaled(4096, 256, 1);
		free(cold.off);
		cold.off = xmalloc(cold.n * sizeof *cold.off);
		for (size_t i = 0; i < cold.n; i++) {
			cold.off[i] = (off_t)(rng_next() % (cold.size / 4096)) * 4096;
			w->expect += file_rec_sum((uint64_t)cold.off[i], 4096);
		}
	} else {
		for (size_t off = 0; off < cold.size; off += MiB)
			w->expect += file_rec_sum(off, MiB);
	}
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = random ? (double)cold.n : (double)cold.size;
	snprintf(w->detail, sizeof w->detail, "%s file, %s, not in memory", human(cold.size, h, sizeof h),
	         random ? "random 4 KiB pages" : "1 MiB chunks");
	return 0;
}

static int seqcold_setup(struct workload *w) { return cold_setup(w, false); }
static int randcold_setup(struct workload *w) { return cold_setup(w, true); }

/* One pass of the cold workloads: chunk bytes at each offset, through the
 * handle (c == 0) or the descriptor. */
static int cold_pass(struct workload *w, int c, bool random, uint64_t *ns)
{
	if (drop_cache(cold.path) != 0)
		return -1;
	uint8_t *buf = bigbuf;
	size_t chunk = random ? 4096 : MiB, n = random ? cold.n : cold.size / MiB;
	uint64_t sum = 0, t0 = t_start();
	mmapfile_t *f = NULL;
	int fd = -1;
	if (c == 0 ? !(f = mmapfile_open(cold.path, O_RDONLY, 0)) : (fd = open(cold.path, O_RDONLY | O_CLOEXEC)) < 0)
		return fail_errno("open", cold.path);
	for (size_t i = 0; i < n; i++) {
		off_t off = random ? cold.off[i] : (off_t)(i * MiB);
		ssize_t r = f ? mmapfile_readat(f, buf, chunk, off) : pread(fd, buf, chunk, off);
		if (r != (ssize_t)chunk) {
			if (f)
				mmapfile_close(f);
			else
				close(fd);
			return fail("%s: short read at %jd", f ? "mmapfile_readat" : "pread", (intmax_t)off);
		}
		sum += rec_sum(buf, chunk);
	}
	if (f ? mmapfile_close(f) != 0 : close(fd) != 0)
		return fail_errno("close", cold.path);
	*ns = t_stop(t0);
	return check_sum(w, sum);
}

static int seqcold_run(struct workload *w, int c, uint64_t *ns) { return cold_pass(w, c, false, ns); }
static int randcold_run(struct workload *w, int c, uint64_t *ns) { return cold_pass(w, c, true, ns); }

/* -- past memory: the process in a memory cgroup of a quarter of the file
 * (v2, or v1's memory controller; root only), the file dropped from the page
 * cache before each run, read at random 4 KiB pages or in 1 MiB chunks ---- */

static struct {
	char *path;
	size_t size, n, limit;
	off_t *off;
	char cg[256], home[4352]; /* the cgroup made, and the one to go back to */
	bool joined;
} pm;

static void trim(char *s);

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int err = errno;
	close(fd);
	errno = err;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Make a cgroup with a memory limit of pm.limit and move this process into
 * it; 1 (skipped, errbuf says why) where that cannot be done. */
static int join_cgroup(void)
{
	char text[4096] = "", file[4608];
	FILE *fp = fopen("/proc/self/cgroup", "re");
	bool v1 = access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0;
	while (fp && fgets(text, sizeof text, fp)) {
		char *a = strchr(text, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = 0;
		trim(b + 1);
		if (v1 ? strstr(a + 1, "memory") != NULL : a[1] == 0)
			snprintf(pm.home, sizeof pm.home, "%s%s", v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup", b + 1);
	}
	if (fp)
		fclose(fp);
	if (!pm.home[0]) {
		snprintf(errbuf, sizeof errbuf, "no memory cgroup found for this process");
		return 1;
	}
	if (geteuid() != 0) {
		snprintf(errbuf, sizeof errbuf, "making a memory cgroup needs root");
		return 1;
	}
	snprintf(pm.cg, sizeof pm.cg, "%s/mmapfile-bench.%ld", v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup",
	         (long)getpid());
	if (!v1)
		write_text("/sys/fs/cgroup/cgroup.subtree_control", "+memory"); /* usually on already */
	if (mkdir(pm.cg, 0755) != 0) {
		snprintf(errbuf, sizeof errbuf, "mkdir %.400s: %s", pm.cg, strerror(errno));
		pm.cg[0] = 0;
		return 1;
	}
	snprintf(text, sizeof text, "%zu", pm.limit);
	snprintf(file, sizeof file, "%s/%s", pm.cg, v1 ? "memory.limit_in_bytes" : "memory.max");
	int rc = write_text(file, text);
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	snprintf(file, sizeof file, "%s/cgroup.procs", pm.cg);
	if (rc != 0 || write_text(file, pid) != 0) {
		snprintf(errbuf, sizeof errbuf, "%.400s: %s", file, strerror(errno));
		rmdir(pm.cg);
		pm.cg[0] = 0;
		return 1;
	}
	pm.joined = true;
	return 0;
}

static void leave_cgroup(void)
{
	char file[4400], pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	snprintf(file, sizeof file, "%s/cgroup.procs", pm.home);
	if (pm.joined && write_text(file, pid) != 0)
		progress("past memory: could not go back to %s: %s", pm.home, strerror(errno));
	pm.joined = false;
	if (pm.cg[0] && rmdir(pm.cg) != 0)
		progress("past memory: rmdir %s: %s", pm.cg, strerror(errno));
	pm.cg[0] = 0;
}

static int past_setup(struct workload *w, bool random)
{
	char h[32], l[32];
	pm.size = scaled(1 * GiB, 64 * MiB, MiB);
	pm.limit = pm.size / 4;
	pm.path = data_path("past.dat");
	make_file(pm.path, pm.size);
	w->expect = 0;
	if (random) {
		pm.n = scaled(2048, 256, 1);
		free(pm.off);
		pm.off = xmalloc(pm.n * sizeof *pm.off);
		for (size_t i = 0; i < pm.n; i++) {
			pm.off[i] = (off_t)(rng_next() % (pm.size / 4096)) * 4096;
			w->expect += file_rec_sum((uint64_t)pm.off[i], 4096);
		}
	} else {
		for (size_t off = 0; off < pm.size; off += MiB)
			w->expect += file_rec_sum(off, MiB);
	}
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = random ? (double)pm.n : (double)pm.size;
	snprintf(w->detail, sizeof w->detail, "%s file, %s, in a %s memory cgroup", human(pm.size, h, sizeof h),
	         random ? "random 4 KiB pages" : "1 MiB chunks", human(pm.limit, l, sizeof l));
	return join_cgroup();
}

static int pastrand_setup(struct workload *w) { return past_setup(w, true); }
static int pastseq_setup(struct workload *w) { return past_setup(w, false); }
static void past_teardown(struct workload *w)
{
	(void)w;
	leave_cgroup();
}

static int past_run(struct workload *w, int c, bool random, uint64_t *ns)
{
	cold.path = pm.path;
	cold.size = pm.size;
	cold.n = pm.n;
	cold.off = random ? pm.off : NULL;
	return cold_pass(w, c, random, ns);
}

static int pastrand_run(struct workload *w, int c, uint64_t *ns) { return past_run(w, c, true, ns); }
static int pastseq_run(struct workload *w, int c, uint64_t *ns) { return past_run(w, c, false, ns); }

/* -- random 4 KiB reads: mmapfile_readat vs pread(2), io_uring ------------- */

static struct {
	char *path;
	size_t size, n;
	off_t *off;
	uint8_t *ubuf; /* URING_BATCH pages */
#ifdef BENCH_URING
	struct io_uring ring;
	bool ring_up;
#endif
} r4k;

static int rand4k_setup(struct workload *w)
{
	char h[32];
	r4k.size = scaled(256 * MiB, 4 * MiB, 4 * KiB);
	r4k.n = scaled(131072, 1024, URING_BATCH);
	r4k.path = data_path("rand4k.dat");
	make_file(r4k.path, r4k.size);
	warm_file(r4k.path);
	size_t pages = r4k.size / 4096;
	r4k.off = xmalloc(r4k.n * sizeof *r4k.off);
	w->expect = 0;
	for (size_t i = 0; i < r4k.n; i++) {
		r4k.off[i] = (off_t)(rng_next() % pages) * 4096;
		w->expect += file_rec_sum((uint64_t)r4k.off[i], 4096);
	}
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)r4k.n;
	r4k.ubuf = xmalloc(URING_BATCH * 4096);
#ifdef BENCH_URING
	int rc = io_uring_queue_init(URING_BATCH, &r4k.ring, 0);
	if (rc < 0)
		return fail("io_uring_queue_init: %s", strerror(-rc));
	r4k.ring_up = true;
#endif
	snprintf(w->detail, sizeof w->detail, "%s file, %zu reads", human(r4k.size, h, sizeof h), r4k.n);
	return 0;
}

#ifdef BENCH_URING
static int uring_reads(int fd, uint64_t *sum)
{
	struct io_uring *ring = &r4k.ring;
	for (size_t i = 0; i < r4k.n; i += URING_BATCH) {
		for (unsigned j = 0; j < URING_BATCH; j++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
			if (!sqe)
				return fail("io_uring_get_sqe: ring full");
			io_uring_prep_read(sqe, fd, r4k.ubuf + j * 4096, 4096, (uint64_t)r4k.off[i + j]);
			sqe->user_data = j;
		}
		int rc = io_uring_submit_and_wait(ring, URING_BATCH);
		if (rc < 0)
			return fail("io_uring_submit_and_wait: %s", strerror(-rc));
		unsigned seen = 0;
		while (seen < URING_BATCH) {
			struct io_uring_cqe *cqe;
			unsigned head, got = 0;
			io_uring_for_each_cqe(ring, head, cqe)
			{
				if (cqe->res != 4096)
					return fail("io_uring read: %d", cqe->res);
				*sum += rec_sum(r4k.ubuf + cqe->user_data * 4096, 4096);
				got++;
			}
			io_uring_cq_advance(ring, got);
			seen += got;
			if (seen < URING_BATCH && (rc = io_uring_wait_cqe(ring, &cqe)) < 0)
				return fail("io_uring_wait_cqe: %s", strerror(-rc));
		}
	}
	return 0;
}
#endif

static int rand4k_run(struct workload *w, int c, uint64_t *ns)
{
	unsigned char buf[4096] __attribute__((aligned(4096)));
	const char *path = r4k.path;
	uint64_t sum = 0;
	uint64_t t0 = t_start();
	if (c == 0) {
		mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
		if (!f)
			return fail_errno("mmapfile_open", path);
		for (size_t i = 0; i < r4k.n; i++) {
			if (mmapfile_readat(f, buf, 4096, r4k.off[i]) != 4096) {
				mmapfile_close(f);
				return fail("mmapfile_readat: short read at %jd", (intmax_t)r4k.off[i]);
			}
			sum += rec_sum(buf, 4096);
		}
		if (mmapfile_close(f) != 0)
			return fail_errno("mmapfile_close", path);
	} else {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail_errno("open", path);
		int rc = 0;
		if (c == 1) {
			for (size_t i = 0; i < r4k.n; i++) {
				if (pread(fd, buf, 4096, r4k.off[i]) != 4096) {
					rc = fail("pread: short read at %jd", (intmax_t)r4k.off[i]);
					break;
				}
				sum += rec_sum(buf, 4096);
			}
		} else {
#ifdef BENCH_URING
			rc = uring_reads(fd, &sum);
#endif
		}
		close(fd);
		if (rc != 0)
			return rc;
	}
	*ns = t_stop(t0);
	return check_sum(w, sum);
}

static void rand4k_teardown(struct workload *w)
{
	(void)w;
#ifdef BENCH_URING
	if (r4k.ring_up)
		io_uring_queue_exit(&r4k.ring);
	r4k.ring_up = false;
#endif
}

/* -- random 4 KiB overwrites: mmapfile_writeat vs pwrite(2) ---------------- */

static struct {
	char *path;
	size_t size, n;
	off_t *off;
	uint64_t salt;
} o4k;

static int over4k_setup(struct workload *w)
{
	char h[32];
	o4k.size = scaled(256 * MiB, 4 * MiB, 4 * KiB);
	o4k.path = data_path("over4k.dat");
	make_file(o4k.path, o4k.size);
	warm_file(o4k.path);
	/* Every page once, in a random order: each run's writes can then be
	 * checked after it, and each run writes other data than the last. */
	o4k.n = o4k.size / 4096;
	o4k.off = xmalloc(o4k.n * sizeof *o4k.off);
	for (size_t i = 0; i < o4k.n; i++)
		o4k.off[i] = (off_t)i * 4096;
	for (size_t i = o4k.n - 1; i > 0; i--) {
		size_t j = rng_next() % (i + 1);
		off_t t = o4k.off[i];
		o4k.off[i] = o4k.off[j];
		o4k.off[j] = t;
	}
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)o4k.n;
	snprintf(w->detail, sizeof w->detail, "%s file, %zu writes", human(o4k.size, h, sizeof h), o4k.n);
	return 0;
}

static int over4k_run(struct workload *w, int c, uint64_t *ns)
{
	(void)w;
	const char *path = o4k.path;
	uint64_t salt = ++o4k.salt;
	uint64_t t0 = t_start();
	if (c == 0) {
		mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
		if (!f)
			return fail_errno("mmapfile_open", path);
		for (size_t i = 0; i < o4k.n; i++) {
			if (mmapfile_writeat(f, src_hashed(i, salt), 4096, o4k.off[i]) != 4096) {
				mmapfile_close(f);
				return fail("mmapfile_writeat at %jd: %s", (intmax_t)o4k.off[i], strerror(errno));
			}
		}
		if (mmapfile_close(f) != 0)
			return fail_errno("mmapfile_close", path);
	} else {
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return fail_errno("open", path);
		for (size_t i = 0; i < o4k.n; i++) {
			if (pwrite(fd, src_hashed(i, salt), 4096, o4k.off[i]) != 4096) {
				close(fd);
				return fail("pwrite at %jd: %s", (intmax_t)o4k.off[i], strerror(errno));
			}
		}
		if (close(fd) != 0)
			return fail_errno("close", path);
	}
	*ns = t_stop(t0);
	/* Check: the size is unchanged and every page holds this run's data. */
	struct stat st;
	if (stat(path, &st) != 0 || (size_t)st.st_size != o4k.size)
		return fail("%s: size changed by overwrites", path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno("open", path);
	for (size_t i = 0; i < o4k.n; i++) {
		if (read_full(fd, bigbuf, 4096, o4k.off[i]) != 0 ||
		    memcmp(bigbuf, src_hashed(i, salt), 4096) != 0) {
			close(fd);
			return fail("%s: page at %jd does not hold what was written", path, (intmax_t)o4k.off[i]);
		}
	}
	close(fd);
	return 0;
}

/* -- appends: 64-byte records, 1 MiB chunks, and growth ------------------- */

enum append_kind { AP_MMAPFILE, AP_STDIO, AP_WRITE, AP_RAWMAP };

struct append_spec {
	char *path;
	size_t rec, total;
	bool hashed; /* records from hashed pool positions, else in sequence */
	uint64_t expect;
};

static inline const uint8_t *append_src(const struct append_spec *a, size_t i)
{
	return a->hashed ? src_hashed(i, 0) : src_linear(i, a->rec);
}

static uint64_t append_expect(const struct append_spec *a)
{
	struct hash h;
	hash_init(&h);
	for (size_t i = 0; i < a->total / a->rec; i++)
		hash_update(&h, append_src(a, i), a->rec);
	return hash_final(&h);
}

/* One run: a fresh file, appended to, closed (all timed), then read back. */
static int append_run(const struct append_spec *a, enum append_kind kind, uint64_t *ns)
{
	const char *path = a->path;
	size_t rec = a->rec, n = a->total / a->rec;
	if (unlink(path) != 0 && errno != ENOENT)
		return fail_errno("unlink", path);
	uint64_t t0 = t_start();
	if (kind == AP_MMAPFILE) {
		mmapfile_t *f = mmapfile_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (!f)
			return fail_errno("mmapfile_open", path);
		for (size_t i = 0; i < n; i++) {
			if (mmapfile_write(f, append_src(a, i), rec) != (ssize_t)rec) {
				mmapfile_close(f);
				return fail("mmapfile_write of record %zu: %s", i, strerror(errno));
			}
		}
		if (mmapfile_close(f) != 0)
			return fail_errno("mmapfile_close", path);
	} else if (kind == AP_STDIO) {
		FILE *fp = fopen(path, "wb");
		if (!fp)
			return fail_errno("fopen", path);
		for (size_t i = 0; i < n; i++) {
			if (fwrite(append_src(a, i), 1, rec, fp) != rec) {
				fclose(fp);
				return fail("fwrite of record %zu: %s", i, strerror(errno));
			}
		}
		if (fclose(fp) != 0)
			return fail_errno("fclose", path);
	} else if (kind == AP_RAWMAP) {
		/* The limit of appending through a mapping: the final size is
		 * known in advance, so the file is sized and mapped once. */
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail_errno("open", path);
		uint8_t *p = ftruncate(fd, (off_t)a->total) == 0
		                 ? mmap(NULL, a->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
		                 : MAP_FAILED;
		if (p == MAP_FAILED) {
			close(fd);
			return fail_errno("ftruncate+mmap", path);
		}
		for (size_t i = 0; i < n; i++)
			memcpy(p + i * rec, append_src(a, i), rec);
		munmap(p, a->total);
		if (close(fd) != 0)
			return fail_errno("close", path);
	} else {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail_errno("open", path);
		for (size_t i = 0; i < n; i++) {
			if (write_full(fd, append_src(a, i), rec) != 0) {
				close(fd);
				return fail("write of chunk %zu: %s", i, strerror(errno));
			}
		}
		if (close(fd) != 0)
			return fail_errno("close", path);
	}
	*ns = t_stop(t0);
	int rc = verify_file(path, a->total, a->expect);
	unlink(path);
	return rc;
}

static struct append_spec ap64, ap1m, grow[2];

static int append64_setup(struct workload *w)
{
	char h[32];
	ap64 = (struct append_spec){.path = data_path("append64.dat"), .rec = 64,
	                            .total = scaled(64 * MiB, MiB, 64)};
	ap64.expect = append_expect(&ap64);
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)(ap64.total / 64);
	snprintf(w->detail, sizeof w->detail, "%s file, %zu records", human(ap64.total, h, sizeof h),
	         ap64.total / 64);
	return 0;
}

static int append64_run(struct workload *w, int c, uint64_t *ns)
{
	(void)w;
	return append_run(&ap64, c == 0 ? AP_MMAPFILE : c == 1 ? AP_STDIO : AP_RAWMAP, ns);
}

static void append64_teardown(struct workload *w)
{
	limit_note(w, 2, 1, "fwrite", 2.5);
}

static int append1m_setup(struct workload *w)
{
	char h[32];
	ap1m = (struct append_spec){.path = data_path("append1m.dat"), .rec = MiB,
	                            .total = scaled(512 * MiB, 16 * MiB, MiB), .hashed = true};
	ap1m.expect = append_expect(&ap1m);
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)ap1m.total;
	snprintf(w->detail, sizeof w->detail, "%s file, %zu chunks", human(ap1m.total, h, sizeof h),
	         ap1m.total / MiB);
	return 0;
}

static int append1m_run(struct workload *w, int c, uint64_t *ns)
{
	(void)w;
	return append_run(&ap1m, c == 0 ? AP_MMAPFILE : AP_WRITE, ns);
}

static char grow_name[2][48];

static int growth_setup(struct workload *w)
{
	char h[2][32];
	size_t big = scaled(GiB, 16 * MiB, 16 * 4 * KiB);
	size_t small = big / 16;
	grow[0] = (struct append_spec){.path = data_path("grow-small.dat"), .rec = 4 * KiB, .total = small};
	grow[1] = (struct append_spec){.path = data_path("grow-big.dat"), .rec = 4 * KiB, .total = big};
	for (int c = 0; c < 2; c++) {
		grow[c].expect = append_expect(&grow[c]);
		w->units[c] = (double)grow[c].total;
		snprintf(grow_name[c], sizeof grow_name[c], "to %s", human(grow[c].total, h[c], sizeof h[c]));
		w->cname[c] = grow_name[c];
	}
	snprintf(w->detail, sizeof w->detail, "4 KiB mmapfile_write, %s vs %s", h[0], h[1]);
	return 0;
}

static int growth_run(struct workload *w, int c, uint64_t *ns)
{
	(void)w;
	return append_run(&grow[c], AP_MMAPFILE, ns);
}

/* -- small files: open, read 4 KiB, close --------------------------------- */

static struct {
	char *dir;
	char **paths;
	size_t n;
} sf;

static int small_setup(struct workload *w)
{
	sf.n = scaled(10000, 100, 1);
	sf.dir = data_path("small");
	if (mkdir(sf.dir, 0755) != 0)
		die("mkdir(%s): %s", sf.dir, strerror(errno));
	sf.paths = xmalloc(sf.n * sizeof *sf.paths);
	w->expect = 0;
	for (size_t i = 0; i < sf.n; i++) {
		size_t len = strlen(sf.dir) + 16;
		sf.paths[i] = xmalloc(len);
		snprintf(sf.paths[i], len, "%s/f%06zu", sf.dir, i);
		int fd = open(sf.paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_full(fd, src_linear(i, 4096), 4096) != 0 || close(fd) != 0)
			die("creating %s: %s", sf.paths[i], strerror(errno));
		w->expect += rec_sum(src_linear(i, 4096), 4096);
	}
	int dfd = open(sf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || syncfs(dfd) != 0)
		die("syncfs(%s): %s", sf.dir, strerror(errno));
	close(dfd);
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)sf.n;
	snprintf(w->detail, sizeof w->detail, "%zu files of 4 KiB", sf.n);
	return 0;
}

static int small_run(struct workload *w, int c, uint64_t *ns)
{
	unsigned char buf[4096] __attribute__((aligned(4096)));
	uint64_t sum = 0;
	uint64_t t0 = t_start();
	for (size_t i = 0; i < sf.n; i++) {
		const char *path = sf.paths[i];
		if (c == 0) {
			mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
			if (!f)
				return fail_errno("mmapfile_open", path);
			ssize_t k = mmapfile_read(f, buf, 4096);
			if (mmapfile_close(f) != 0 || k != 4096)
				return fail("mmapfile_read(%s): %zd", path, k);
		} else {
			FILE *fp = fopen(path, "rb");
			if (!fp)
				return fail_errno("fopen", path);
			size_t k = fread(buf, 1, 4096, fp);
			if (fclose(fp) != 0 || k != 4096)
				return fail("fread(%s): %zu", path, k);
		}
		sum += rec_sum(buf, 4096);
	}
	*ns = t_stop(t0);
	return check_sum(w, sum);
}

/* -- mmapfile_sync after one 4 KiB write: a large file against 1 MiB ------- */

static struct {
	char *path[2];
	size_t size[2];
	mmapfile_t *f[2];
	uint64_t salt;
} sy;
static char sync_name[2][48];

static int sync_setup(struct workload *w)
{
	char h[2][32];
	sy.size[0] = MiB;
	sy.size[1] = scaled(GiB, 64 * MiB, MiB);
	sy.path[0] = data_path("sync-small.dat");
	sy.path[1] = data_path("sync-big.dat");
	for (int c = 0; c < 2; c++) {
		make_file(sy.path[c], sy.size[c]);
		sy.f[c] = mmapfile_open(sy.path[c], O_RDWR, 0);
		if (!sy.f[c])
			return fail_errno("mmapfile_open", sy.path[c]);
		w->units[c] = SYNC_REPS;
		snprintf(sync_name[c], sizeof sync_name[c], "%s file", human(sy.size[c], h[c], sizeof h[c]));
		w->cname[c] = sync_name[c];
	}
	snprintf(w->detail, sizeof w->detail, "%d x (4 KiB writeat + sync) per run", SYNC_REPS);
	return 0;
}

static int sync_run(struct workload *w, int c, uint64_t *ns)
{
	(void)w;
	mmapfile_t *f = sy.f[c];
	size_t pages = sy.size[c] / 4096;
	uint64_t salt = ++sy.salt;
	off_t off[SYNC_REPS];
	for (int k = 0; k < SYNC_REPS; k++)
		off[k] = (off_t)(rng_next() % pages) * 4096;
	uint64_t t0 = t_start();
	for (int k = 0; k < SYNC_REPS; k++) {
		if (mmapfile_writeat(f, src_hashed((uint64_t)k, salt), 4096, off[k]) != 4096)
			return fail("mmapfile_writeat: %s", strerror(errno));
		if (mmapfile_sync(f) != 0)
			return fail("mmapfile_sync: %s", strerror(errno));
	}
	*ns = t_stop(t0);
	/* Check: the file is still exactly its size, the last write is there. */
	struct stat st;
	if (stat(sy.path[c], &st) != 0 || (size_t)st.st_size != sy.size[c])
		return fail("%s: wrong size after sync", sy.path[c]);
	int fd = open(sy.path[c], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno("open", sy.path[c]);
	int rc = read_full(fd, bigbuf, 4096, off[SYNC_REPS - 1]);
	close(fd);
	if (rc != 0 || memcmp(bigbuf, src_hashed(SYNC_REPS - 1, salt), 4096) != 0)
		return fail("%s: the last write is not in the file", sy.path[c]);
	return 0;
}

static void sync_teardown(struct workload *w)
{
	(void)w;
	for (int c = 0; c < 2; c++) {
		if (sy.f[c])
			mmapfile_close(sy.f[c]);
		sy.f[c] = NULL;
	}
}

/* -- threads: the same random readat work on 1 thread and split over 2 ---- */

static struct {
	char *path;
	size_t size, n;
	off_t *off;
	mmapfile_t *f;
	/* Per run of each contender: the threads' CPU time, and that over the
	 * wall time in 1/1000. */
	uint64_t *cpu[2], *busy[2];
	int nrun[2];
} th;

struct worker {
	const off_t *off;
	size_t n;
	pthread_barrier_t *start;
	uint64_t sum, cpu_ns;
	int err;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	unsigned char *buf = aligned_alloc(4096, 4096);
	if (!buf) {
		wk->err = ENOMEM;
		pthread_barrier_wait(wk->start);
		return NULL;
	}
	pthread_barrier_wait(wk->start);
	uint64_t cpu0 = thread_cpu_ns();
	uint64_t sum = 0;
	for (size_t i = 0; i < wk->n; i++) {
		if (mmapfile_readat(th.f, buf, 4096, wk->off[i]) != 4096) {
			wk->err = errno ? errno : EIO;
			break;
		}
		sum += rec_sum(buf, 4096);
	}
	wk->sum = sum;
	wk->cpu_ns = thread_cpu_ns() - cpu0;
	free(buf);
	return NULL;
}

static int threads_setup(struct workload *w)
{
	char h[32];
	th.size = scaled(256 * MiB, 4 * MiB, 4 * KiB);
	th.n = scaled(262144, 2048, 2);
	th.path = data_path("threads.dat");
	make_file(th.path, th.size);
	warm_file(th.path);
	size_t pages = th.size / 4096;
	th.off = xmalloc(th.n * sizeof *th.off);
	w->expect = 0;
	for (size_t i = 0; i < th.n; i++) {
		th.off[i] = (off_t)(rng_next() % pages) * 4096;
		w->expect += file_rec_sum((uint64_t)th.off[i], 4096);
	}
	/* One handle for all runs, every page of it touched once: the runs
	 * measure the reads, not the first faults. */
	th.f = mmapfile_open(th.path, O_RDONLY, 0);
	if (!th.f)
		return fail_errno("mmapfile_open", th.path);
	for (size_t off = 0; off < th.size; off += MiB)
		if (mmapfile_readat(th.f, bigbuf, MiB, (off_t)off) <= 0)
			return fail("mmapfile_readat: %s", strerror(errno));
	for (int c = 0; c < 2; c++) {
		th.cpu[c] = xmalloc(((size_t)opt.rounds + 1) * sizeof(uint64_t));
		th.busy[c] = xmalloc(((size_t)opt.rounds + 1) * sizeof(uint64_t));
		th.nrun[c] = 0;
	}
	for (int c = 0; c < w->ncont; c++)
		w->units[c] = (double)th.n;
	snprintf(w->detail, sizeof w->detail, "%s, %zu reads, one handle",
	         human(th.size, h, sizeof h), th.n);
	return 0;
}

static int threads_run(struct workload *w, int c, uint64_t *ns)
{
	int nt = c == 0 ? 1 : 2;
	struct worker wk[2];
	pthread_t tid[2];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)nt + 1);
	size_t per = th.n / (size_t)nt;
	for (int t = 0; t < nt; t++) {
		wk[t] = (struct worker){.off = th.off + (size_t)t * per, .n = per, .start = &start};
		int rc = pthread_create(&tid[t], NULL, worker_main, &wk[t]);
		if (rc != 0)
			die("pthread_create: %s", strerror(rc));
	}
	pthread_barrier_wait(&start);
	uint64_t t0 = t_start();
	for (int t = 0; t < nt; t++)
		pthread_join(tid[t], NULL);
	*ns = t_stop(t0);
	pthread_barrier_destroy(&start);
	uint64_t sum = 0, cpu = 0;
	for (int t = 0; t < nt; t++) {
		if (wk[t].err)
			return fail("mmapfile_readat in thread %d: %s", t, strerror(wk[t].err));
		sum += wk[t].sum;
		cpu += wk[t].cpu_ns;
	}
	if (th.nrun[c] < opt.rounds + 1) {
		th.cpu[c][th.nrun[c]] = cpu;
		th.busy[c][th.nrun[c]++] = cpu * 1000 / (*ns ? *ns : 1);
	}
	return check_sum(w, sum);
}

static void threads_teardown(struct workload *w)
{
	/* How much of two cores the two threads had (below 2: other processes
	 * took the rest, or the threads slept), and the CPU time per read on
	 * 1 and 2 threads (higher on 2: the threads slow each other down). */
	if (th.nrun[0] > 0 && th.nrun[1] > 0)
		snprintf(w->note, sizeof w->note,
		         "cores kept busy (median CPU / wall time): %.2f by 1 thread, %.2f by 2; CPU time "
		         "per read: %.0f ns on 1 thread, %.0f ns on 2",
		         median(th.busy[0], th.nrun[0]) / 1000, median(th.busy[1], th.nrun[1]) / 1000,
		         median(th.cpu[0], th.nrun[0]) / (double)th.n,
		         median(th.cpu[1], th.nrun[1]) / (double)th.n);
	if (th.f)
		mmapfile_close(th.f);
	th.f = NULL;
}

/* ---- the table of workloads --------------------------------------------- */

#define SPEEDUP(a_, row_, goal_, name_, what_) \
	{.a = (a_), .b = 0, .row = (row_), .cost = false, .goal = (goal_), .name = (name_), .what = (what_)}

/* Run in this order: the threads workload last, because creating a thread
 * switches stdio to locked mode for the rest of the process (glibc skips the
 * stream locks while a process has one thread), which would change what the
 * stdio contenders measure. */
static struct workload workloads[] = {
	{.id = "seq64", .desc = "sequential 64-byte records", .ncont = 5,
	 .cname = {"mmapfile_read", "fread", "fread_unlocked", "raw mapping", "bare cursor call"}, .unit = "op",
	 .nratio = 4,
	 .ratio = {SPEEDUP(1, 1, 1.8, "fread", "fread time / mmapfile_read time"),
	           SPEEDUP(2, 2, 0, "fread_unlocked", "fread_unlocked time / mmapfile_read time"),
	           SPEEDUP(3, 3, 0, "raw mapping",
	                   "memcpy of each record from a raw mapping (the limit) time / mmapfile_read time"),
	           SPEEDUP(4, 4, 0, "bare cursor call",
	                   "a bare read call with a cursor over a raw mapping (bounds, copy, advance; the "
	                   "limit for a call) time / mmapfile_read time")},
	 .setup = seq64_setup, .run = seq64_run, .teardown = seq64_teardown},
	{.id = "seq64lib", .desc = "sequential 64-byte records, library's file", .ncont = 5,
	 .cname = {"mmapfile_read", "fread", "fread_unlocked", "raw mapping", "bare cursor call"}, .unit = "op",
	 .nratio = 4,
	 .ratio = {SPEEDUP(1, 1, 4.0, "fread", "fread time / mmapfile_read time"),
	           SPEEDUP(2, 2, 0, "fread_unlocked", "fread_unlocked time / mmapfile_read time"),
	           SPEEDUP(3, 3, 0, "raw mapping",
	                   "memcpy of each record from a raw mapping (the limit) time / mmapfile_read time"),
	           SPEEDUP(4, 4, 0, "bare cursor call",
	                   "a bare read call with a cursor over a raw mapping (bounds, copy, advance; the "
	                   "limit for a call) time / mmapfile_read time")},
	 .setup = seq64lib_setup, .run = seq64_run, .teardown = seq64lib_teardown},
	{.id = "seq1m", .desc = "sequential 1 MiB chunks", .ncont = 3,
	 .cname = {"mmapfile_read", "read(2)", "raw mapping"}, .unit = "B", .nratio = 2,
	 .ratio = {SPEEDUP(1, 1, 1.3, "read(2)", "read(2) time / mmapfile_read time"),
	           SPEEDUP(2, 2, 0.95, "raw mapping",
	                   "memcpy from a raw mapping (the limit) time / mmapfile_read time")},
	 .setup = seq1m_setup, .run = seq1m_run},
	{.id = "reread", .desc = "re-reading 1 MiB chunks, warm handle", .ncont = 2,
	 .cname = {"mmapfile_readat", "raw mapping"}, .unit = "B", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 0.95, "raw mapping",
	                   "memcpy from a raw mapping touched before (the limit) time / mmapfile_readat time")},
	 .setup = reread_setup, .run = reread_run},
	{.id = "seqcold", .desc = "sequential 1 MiB chunks, cold cache", .ncont = 2,
	 .cname = {"mmapfile_readat", "pread(2)"}, .unit = "B", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 1.0, "pread(2)", "pread time / mmapfile_readat time")},
	 .setup = seqcold_setup, .run = seqcold_run},
	{.id = "randcold", .desc = "random 4 KiB reads, cold cache", .ncont = 2,
	 .cname = {"mmapfile_readat", "pread(2)"}, .unit = "op", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 0.9, "pread(2)", "pread time / mmapfile_readat time")},
	 .setup = randcold_setup, .run = randcold_run},
	{.id = "pastrand", .desc = "random 4 KiB reads past memory", .ncont = 2,
	 .cname = {"mmapfile_readat", "pread(2)"}, .unit = "op", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 0.9, "pread(2)", "pread time / mmapfile_readat time")},
	 .setup = pastrand_setup, .run = pastrand_run, .teardown = past_teardown},
	{.id = "pastseq", .desc = "sequential 1 MiB chunks past memory", .ncont = 2,
	 .cname = {"mmapfile_readat", "pread(2)"}, .unit = "B", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 0.9, "pread(2)", "pread time / mmapfile_readat time")},
	 .setup = pastseq_setup, .run = pastseq_run, .teardown = past_teardown},
	{.id = "rand4k", .desc = "random 4 KiB reads", .ncont =
#ifdef BENCH_URING
	 3,
#else
	 2,
#endif
	 .cname = {"mmapfile_readat", "pread(2)", "io_uring x32"}, .unit = "op", .nratio =
#ifdef BENCH_URING
	 2,
#else
	 1,
#endif
	 .ratio = {SPEEDUP(1, 1, 1.5, "pread(2)", "pread time / mmapfile_readat time"),
	           SPEEDUP(2, 2, 0, "io_uring", "io_uring (batches of 32) time / mmapfile_readat time")},
	 .setup = rand4k_setup, .run = rand4k_run, .teardown = rand4k_teardown},
	{.id = "overwrite4k", .desc = "random 4 KiB overwrites", .ncont = 2,
	 .cname = {"mmapfile_writeat", "pwrite(2)"}, .unit = "op", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 0, "pwrite(2)", "pwrite time / mmapfile_writeat time")},
	 .setup = over4k_setup, .run = over4k_run},
	{.id = "append64", .desc = "appending 64-byte records", .ncont = 3,
	 .cname = {"mmapfile_write", "fwrite", "raw mapping"}, .unit = "op", .nratio = 2,
	 .ratio = {SPEEDUP(1, 1, 2.5, "fwrite", "fwrite time / mmapfile_write time"),
	           SPEEDUP(2, 2, 0, "raw mapping",
	                   "memcpy of each record into a raw mapping of the final size (the limit) time / "
	                   "mmapfile_write time")},
	 .setup = append64_setup, .run = append64_run, .teardown = append64_teardown},
	{.id = "append1m", .desc = "appending 1 MiB chunks", .ncont = 2,
	 .cname = {"mmapfile_write", "write(2)"}, .unit = "B", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 1.0, "write(2)", "write(2) time / mmapfile_write time")},
	 .setup = append1m_setup, .run = append1m_run},
	{.id = "smallfiles", .desc = "open, read 4 KiB, close", .ncont = 2,
	 .cname = {"mmapfile", "fopen/fread/fclose"}, .unit = "file", .nratio = 1,
	 .ratio = {SPEEDUP(1, 1, 0.8, "stdio", "fopen+fread+fclose time / mmapfile open+read+close time")},
	 .setup = small_setup, .run = small_run},
	{.id = "growth", .desc = "growing a file in 4 KiB writes", .ncont = 2,
	 .cname = {"to 64 MiB", "to 1 GiB"}, .unit = "B", .nratio = 1,
	 .ratio = {{.a = 1, .b = 0, .row = 1, .cost = true, .goal = 1.5, .name = "growth cost/B",
	            .what = "cost per byte of the whole growth to the large size / "
	                    "cost per byte of the whole growth to 1/16 of it (1.0 = amortised O(1))"}},
	 .setup = growth_setup, .run = growth_run},
	{.id = "sync", .desc = "mmapfile_sync after a 4 KiB write", .ncont = 2,
	 .cname = {"1 MiB file", "1 GiB file"}, .unit = "op", .nratio = 1,
	 .ratio = {{.a = 1, .b = 0, .row = 1, .cost = true, .goal = 2.0, .name = "sync cost",
	            .what = "time of (4 KiB writeat + sync) on the large file / the same on the 1 MiB file"}},
	 .setup = sync_setup, .run = sync_run, .teardown = sync_teardown},
	{.id = "threads", .desc = "mmapfile_readat scaling", .ncont = 2,
	 .cname = {"1 thread", "2 threads"}, .unit = "op", .nratio = 1,
	 .ratio = {{.a = 0, .b = 1, .row = 1, .cost = false, .goal = 1.8, .name = "2 threads",
	            .what = "time of the random 4 KiB readat work on 1 thread / the same work split over "
	                    "2 threads (speedup)"}},
	 .setup = threads_setup, .run = threads_run, .teardown = threads_teardown},
};
#define NWORK (sizeof workloads / sizeof workloads[0])

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median(const uint64_t *s, int n)
{
	uint64_t *t = malloc((size_t)n * sizeof *t);
	if (!t)
		die("out of memory");
	memcpy(t, s, (size_t)n * sizeof *t);
	qsort(t, (size_t)n, sizeof *t, cmp_u64);
	double m = n % 2 ? (double)t[n / 2] : ((double)t[n / 2 - 1] + (double)t[n / 2]) / 2;
	free(t);
	return m;
}

static void run_workload(struct workload *w)
{
	progress("%s: setting up", w->id);
	errbuf[0] = 0;
	int rc = w->setup(w);
	if (rc != 0) {
		w->skipped = rc > 0;
		w->failed = !w->skipped;
		snprintf(w->error, sizeof w->error, "%s: %s", w->skipped ? "skipped" : "setup", errbuf);
		if (w->skipped)
			progress("%s: %s", w->id, w->error);
		goto out;
	}
	progress("%s: %s, %s; %d rounds of %d contenders", w->id, w->desc, w->detail, opt.rounds, w->ncont);
	for (int c = 0; c < w->ncont; c++) {
		w->samples[c] = xmalloc((size_t)opt.rounds * sizeof(uint64_t));
		w->cpu[c] = xmalloc((size_t)opt.rounds * sizeof(uint64_t));
	}
	for (int r = opt.warmup ? -1 : 0; r < opt.rounds; r++) {
		for (int c = 0; c < w->ncont; c++) {
			uint64_t ns = 0;
			run_cpu = 0;
			if (w->run(w, c, &ns) != 0) {
				w->failed = true;
				snprintf(w->error, sizeof w->error, "%s: %s", w->cname[c], errbuf);
				progress("%s: FAILED: %s", w->id, w->error);
				goto out;
			}
			if (r >= 0) {
				w->samples[c][r] = ns;
				w->cpu[c][r] = run_cpu;
			}
		}
		if (r >= 0)
			w->nsamples = r + 1;
	}
	for (int c = 0; c < w->ncont; c++) {
		w->median[c] = median(w->samples[c], w->nsamples);
		w->cpu_median[c] = median(w->cpu[c], w->nsamples);
	}
	for (int k = 0; k < w->nratio; k++) {
		struct ratio *q = &w->ratio[k];
		q->value = (w->median[q->a] / w->units[q->a]) / (w->median[q->b] / w->units[q->b]);
		q->met = q->goal == 0 ? -1 : q->cost ? q->value <= q->goal : q->value >= q->goal;
	}
	w->ran = true;
out:
	if (w->teardown)
		w->teardown(w);
}

/* ---- machine information -------------------------------------------------- */

static struct {
	char cpu[128];
	long cores;
	char kernel[128];
	char fstype[64];
	char date[32];
	unsigned long long mem_mib;
	double load[2]; /* 1-minute load average at the start and at the end */
	struct machine_costs costs;
} machine;

static double loadavg(void)
{
	double l = -1;
	FILE *fp = fopen("/proc/loadavg", "r");
	if (fp) {
		if (fscanf(fp, "%lf", &l) != 1)
			l = -1;
		fclose(fp);
	}
	return l;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = 0;
}

/* The file system of dir: the mount with the longest mount point that is a
 * prefix of dir's real path, from /proc/self/mountinfo. */
static void find_fstype(const char *dir)
{
	snprintf(machine.fstype, sizeof machine.fstype, "unknown");
	char *real = realpath(dir, NULL);
	FILE *fp = fopen("/proc/self/mountinfo", "r");
	if (!real || !fp)
		goto out;
	char line[4096];
	size_t best = 0;
	while (fgets(line, sizeof line, fp)) {
		char mnt[2048], fstype[64];
		/* id parent major:minor root mountpoint options [optional...] - fstype ... */
		if (sscanf(line, "%*s %*s %*s %*s %2047s", mnt) != 1)
			continue;
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1)
			continue;
		/* Undo the octal escapes (\040 for a space). */
		char *o = mnt;
		for (char *i = mnt; *i; i++) {
			if (i[0] == '\\' && i[1] >= '0' && i[1] <= '7' && i[2] && i[3]) {
				*o++ = (char)((i[1] - '0') * 64 + (i[2] - '0') * 8 + (i[3] - '0'));
				i += 3;
			} else {
				*o++ = *i;
			}
		}
		*o = 0;
		size_t n = strlen(mnt);
		bool prefix = !strcmp(mnt, "/") ||
		              (!strncmp(real, mnt, n) && (real[n] == '/' || real[n] == 0));
		if (prefix && (n > best || best == 0)) {
			best = n;
			snprintf(machine.fstype, sizeof machine.fstype, "%s", fstype);
		}
	}
out:
	if (fp)
		fclose(fp);
	free(real);
}

static void gather_machine(void)
{
	snprintf(machine.cpu, sizeof machine.cpu, "unknown");
	FILE *fp = fopen("/proc/cpuinfo", "r");
	if (fp) {
		char line[512];
		while (fgets(line, sizeof line, fp)) {
			char *colon = strchr(line, ':');
			if (colon && (!strncmp(line, "model name", 10) || !strncmp(line, "Processor", 9) ||
			              !strncmp(line, "cpu model", 9))) {
				char *v = colon + 1;
				while (*v == ' ')
					v++;
				trim(v);
				snprintf(machine.cpu, sizeof machine.cpu, "%s", v);
				break;
			}
		}
		fclose(fp);
	}
	machine.cores = sysconf(_SC_NPROCESSORS_ONLN);
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(machine.kernel, sizeof machine.kernel, "%s", u.release);
	struct sysinfo si;
	if (sysinfo(&si) == 0)
		machine.mem_mib = (unsigned long long)si.totalram * si.mem_unit / MiB;
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(machine.date, sizeof machine.date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	find_fstype(opt.dir);
	machine.load[0] = loadavg();
}

/* ---- output --------------------------------------------------------------- */

static FILE *jf; /* where print_json writes */

static void json_str(const char *s)
{
	fputc('"', jf);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(jf, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(jf, "\\u%04x", ch);
		else
			fputc(ch, jf);
	}
	fputc('"', jf);
}

static void print_json(void)
{
	fprintf(jf, "{\n  \"benchmark\": \"libmmapfile\",\n  \"library_version\": \"%d.%d.%d\",\n",
	       MMAPFILE_VERSION_MAJOR, MMAPFILE_VERSION_MINOR, MMAPFILE_VERSION_PATCH);
	fprintf(jf, "  \"machine\": {\"cpu\": ");
	json_str(machine.cpu);
	fprintf(jf, ", \"cores\": %ld, \"mem_mib\": %llu, \"kernel\": ", machine.cores, machine.mem_mib);
	json_str(machine.kernel);
	fprintf(jf, ", \"fs_type\": ");
	json_str(machine.fstype);
	fprintf(jf, ", \"libc\": ");
	json_str(gnu_get_libc_version());
	fprintf(jf, ", \"date\": ");
	json_str(machine.date);
	fprintf(jf, ", \"loadavg_start\": %.2f, \"loadavg_end\": %.2f},\n", machine.load[0],
	        machine.load[1]);
	const struct machine_costs *k = &machine.costs;
	fprintf(jf, "  \"costs\": {\"syscall_ns\": %.1f, \"pte_touch_ns\": %.1f, \"pmd_touch_ns\": %.1f, "
	        "\"pmd_size\": %zu, \"pmd_mapped_kb\": %ld, \"probe_kb\": %ld, \"thp\": ",
	        k->syscall_ns, k->pte_touch_ns, k->pmd_touch_ns, k->pmd_size, k->pmd_kb, k->probe_kb);
	json_str(k->thp);
	fprintf(jf, "},\n");
	fprintf(jf, "  \"config\": {\"rounds\": %d, \"warmup_rounds\": %d, \"scale\": %g, \"order\": "
	       "\"A B A B ...\", \"statistic\": \"median\", \"clock\": \"CLOCK_MONOTONIC\", "
	       "\"io_uring\": %s},\n",
	       opt.rounds, opt.warmup ? 1 : 0, opt.scale,
#ifdef BENCH_URING
	       "true"
#else
	       "false"
#endif
	);
	fprintf(jf, "  \"workloads\": [");
	bool first = true;
	for (size_t i = 0; i < NWORK; i++) {
		struct workload *w = &workloads[i];
		if (!w->selected)
			continue;
		fprintf(jf, "%s\n    {\"id\": ", first ? "" : ",");
		first = false;
		json_str(w->id);
		fprintf(jf, ", \"title\": ");
		json_str(w->desc);
		fprintf(jf, ", \"detail\": ");
		json_str(w->detail);
		fprintf(jf, ", \"unit\": ");
		json_str(w->unit);
		if (w->note[0]) {
			fprintf(jf, ", \"note\": ");
			json_str(w->note);
		}
		if (!w->ran) {
			fprintf(jf, ", \"error\": ");
			json_str(w->failed || w->skipped ? w->error : "not run");
			fprintf(jf, "}");
			continue;
		}
		fprintf(jf, ",\n     \"contenders\": [");
		for (int c = 0; c < w->ncont; c++) {
			fprintf(jf, "%s\n       {\"name\": ", c ? "," : "");
			json_str(w->cname[c]);
			fprintf(jf, ", \"units_per_run\": %.0f, \"median_ns\": %.0f, \"ns_per_unit\": %.6g, "
			        "\"cpu_ns_per_unit\": %.6g",
			       w->units[c], w->median[c], w->median[c] / w->units[c], w->cpu_median[c] / w->units[c]);
			if (!strcmp(w->unit, "B"))
				fprintf(jf, ", \"gb_per_s\": %.4g", w->units[c] / w->median[c]);
			fprintf(jf, ", \"samples_ns\": [");
			for (int r = 0; r < w->nsamples; r++)
				fprintf(jf, "%s%" PRIu64, r ? ", " : "", w->samples[c][r]);
			fprintf(jf, "]}");
		}
		fprintf(jf, "\n     ],\n     \"ratios\": [");
		for (int k = 0; k < w->nratio; k++) {
			struct ratio *q = &w->ratio[k];
			fprintf(jf, "%s\n       {\"name\": ", k ? "," : "");
			json_str(q->name);
			fprintf(jf, ", \"contender\": ");
			json_str(w->cname[q->a]);
			fprintf(jf, ", \"baseline\": ");
			json_str(w->cname[q->b]);
			fprintf(jf, ", \"kind\": \"%s\", \"meaning\": ", q->cost ? "cost" : "speedup");
			json_str(q->what);
			fprintf(jf, ", \"value\": %.4f", q->value);
			if (q->goal > 0)
				fprintf(jf, ", \"goal\": %.2f, \"goal_op\": \"%s\", \"met\": %s}", q->goal,
				       q->cost ? "<=" : ">=", q->met ? "true" : "false");
			else
				fprintf(jf, ", \"goal\": null, \"goal_op\": null, \"met\": null}");
		}
		fprintf(jf, "\n     ]}");
	}
	fprintf(jf, "\n  ]\n}\n");
}

static const char *fmt_time(double ns, char *buf, size_t len)
{
	if (ns >= 1e9)
		snprintf(buf, len, "%.3f s", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, len, "%.1f ms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else
		snprintf(buf, len, "%.0f ns", ns);
	return buf;
}

static const char *fmt_unit(const struct workload *w, int c, char *buf, size_t len)
{
	double per = w->median[c] / w->units[c];
	if (!strcmp(w->unit, "B")) {
		snprintf(buf, len, "%.3f ns/B %6.2f GB/s", per, 1 / per);
	} else {
		char t[32];
		snprintf(buf, len, "%s/%s", fmt_time(per, t, sizeof t), w->unit);
	}
	return buf;
}

static void rule(void)
{
	for (int i = 0; i < 140; i++)
		putchar('-');
	putchar('\n');
}

/* (slowest - fastest) / median, in percent: how noisy the rounds were. */
static double spread(const struct workload *w, int c)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int r = 0; r < w->nsamples; r++) {
		lo = w->samples[c][r] < lo ? w->samples[c][r] : lo;
		hi = w->samples[c][r] > hi ? w->samples[c][r] : hi;
	}
	return 100.0 * (double)(hi - lo) / w->median[c];
}

static void print_table(void)
{
	printf("libmmapfile %d.%d.%d benchmark, %s\n", MMAPFILE_VERSION_MAJOR, MMAPFILE_VERSION_MINOR,
	       MMAPFILE_VERSION_PATCH, machine.date);
	printf("machine: %s, %ld cores, %llu MiB, kernel %s, %s, glibc %s; load average %.2f at the "
	       "start, %.2f at the end\n",
	       machine.cpu, machine.cores, machine.mem_mib, machine.kernel, machine.fstype,
	       gnu_get_libc_version(), machine.load[0], machine.load[1]);
	const struct machine_costs *k = &machine.costs;
	printf("costs: system call %.0f ns; first touch of a cached page %.0f ns through a 4 KiB PTE, ",
	       k->syscall_ns, k->pte_touch_ns);
	if (k->pmd_touch_ns >= 0)
		printf("%.0f ns PMD-mapped (%ld of %ld KiB got PMD entries); THP %s, PMD %zu KiB\n",
		       k->pmd_touch_ns, k->pmd_kb, k->probe_kb, k->thp, k->pmd_size >> 10);
	else
		printf("no transparent huge pages\n");
	printf("%d rounds (A B A B ...)%s, median per contender; spread = (slowest - fastest) / median; "
	       "scale %g\n\n",
	       opt.rounds, opt.warmup ? " after one warm-up round" : "", opt.scale);
	printf("%-40s %-20s %10s %7s  %-24s %11s %10s %9s  %s\n", "workload", "contender", "median", "spread",
	       "per unit", "cpu/unit", "ratio", "goal", "met?");
	int met = 0, goals = 0;
	for (size_t i = 0; i < NWORK; i++) {
		struct workload *w = &workloads[i];
		if (!w->selected)
			continue;
		rule();
		char head[2][sizeof w->detail + 8];
		snprintf(head[0], sizeof head[0], "%s: %s", w->id, w->desc);
		snprintf(head[1], sizeof head[1], "  %s", w->detail);
		if (!w->ran) {
			printf("%-40s %s%s\n", head[0], w->skipped ? "" : "FAILED: ",
			       w->failed || w->skipped ? w->error : "not run");
			continue;
		}
		for (int c = 0; c < w->ncont || c < 2; c++) {
			const char *h = c < 2 ? head[c] : "";
			if (c >= w->ncont) {
				printf("%s\n", h);
				continue;
			}
			char t[32], u[48], rv[24] = "", gv[24] = "", mv[8] = "";
			for (int k = 0; k < w->nratio; k++) {
				struct ratio *q = &w->ratio[k];
				if (q->row != c)
					continue;
				snprintf(rv, sizeof rv, q->cost ? "%#.3g cost" : "%#.3gx", q->value);
				if (q->goal > 0) {
					snprintf(gv, sizeof gv, q->cost ? "<= %.2f" : ">= %.2fx", q->goal);
					snprintf(mv, sizeof mv, "%s", q->met ? "yes" : "NO");
					goals++;
					met += q->met;
				} else {
					snprintf(gv, sizeof gv, "-");
				}
			}
			char cu[32];
			if (!strcmp(w->unit, "B"))
				snprintf(cu, sizeof cu, "%.3f ns/B", w->cpu_median[c] / w->units[c]);
			else
				fmt_time(w->cpu_median[c] / w->units[c], cu, sizeof cu);
			printf("%-40.40s %-20s %10s %6.0f%%  %-24s %11s %10s %9s  %s\n", h, w->cname[c],
			       fmt_time(w->median[c], t, sizeof t), spread(w, c), fmt_unit(w, c, u, sizeof u), cu,
			       rv, gv, mv);
		}
	}
	rule();
	printf("goals met: %d of %d\n\n", met, goals);
	printf("ratio: the other contender's time / libmmapfile's time for the same work (bigger: "
	       "libmmapfile faster), except:\n");
	for (size_t i = 0; i < NWORK; i++) {
		struct workload *w = &workloads[i];
		if (!w->selected || !w->ran)
			continue;
		for (int k = 0; k < w->nratio; k++) {
			struct ratio *q = &w->ratio[k];
			if (q->cost || q->a < q->b)
				printf("  %-8s %s: %s\n", w->id, q->cost ? "(cost, smaller is better)" : "(speedup)",
				       q->what);
		}
		if (w->note[0])
			printf("  %-8s note: %s\n", w->id, w->note);
	}
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: bench [options]\n"
	        "  --rounds N       timed rounds per workload (default %d); contenders alternate A B A B\n"
	        "  --scale F        multiply every data size and count by F (default 1; also --size-scale)\n"
	        "  --quick          --scale 1/16: a fast smoke run\n"
	        "  --only LIST      run only these workloads (comma-separated ids; see --list)\n"
	        "  --dir DIR        where to create the data (default $TMPDIR or /tmp); removed at the end\n"
	        "  --json           print one JSON document on stdout instead of the table\n"
	        "  --json-file F    also write that JSON document to F\n"
	        "  --no-warmup      skip the untimed warm-up round\n"
	        "  --seed N         seed of the random offsets\n"
	        "  --quiet          no progress on stderr\n"
	        "  --list           list the workloads and exit\n",
	        opt.rounds);
}

static bool wanted(const char *id)
{
	if (!opt.only)
		return true;
	size_t n = strlen(id);
	for (const char *p = opt.only; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, id, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"rounds", required_argument, 0, 'r'}, {"scale", required_argument, 0, 's'},
		{"size-scale", required_argument, 0, 's'},
		{"quick", no_argument, 0, 'q'},         {"only", required_argument, 0, 'o'},
		{"dir", required_argument, 0, 'd'},     {"json", no_argument, 0, 'j'},
		{"no-warmup", no_argument, 0, 'W'},     {"seed", required_argument, 0, 'S'},
		{"json-file", required_argument, 0, 'J'},
		{"quiet", no_argument, 0, 'Q'},         {"list", no_argument, 0, 'l'},
		{"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
	};
	int ch;
	char *end;
	while ((ch = getopt_long(argc, argv, "r:s:qo:d:jJ:WS:Qlh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			opt.rounds = (int)strtol(optarg, &end, 10);
			if (*end || opt.rounds < 1 || opt.rounds > 1000)
				die("--rounds: a number from 1 to 1000");
			break;
		case 's':
			opt.scale = strtod(optarg, &end);
			if (*end || !(opt.scale > 0) || opt.scale > 64)
				die("--scale: a number above 0, at most 64");
			break;
		case 'q':
			opt.scale = 1.0 / 16;
			break;
		case 'o':
			opt.only = optarg;
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'j':
			opt.json = true;
			break;
		case 'J':
			opt.json_file = optarg;
			break;
		case 'W':
			opt.warmup = false;
			break;
		case 'S':
			opt.seed = strtoull(optarg, &end, 0);
			if (*end)
				die("--seed: a number");
			break;
		case 'Q':
			opt.quiet = true;
			break;
		case 'l':
			for (size_t i = 0; i < NWORK; i++)
				printf("%-12s %s\n", workloads[i].id, workloads[i].desc);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	int nsel = 0;
	for (size_t i = 0; i < NWORK; i++)
		nsel += workloads[i].selected = wanted(workloads[i].id);
	if (nsel == 0)
		die("--only %s: no such workload (see --list)", opt.only);
	if (!opt.dir) {
		opt.dir = getenv("TMPDIR");
		if (!opt.dir || !*opt.dir)
			opt.dir = "/tmp";
	}
	rng_state = opt.seed;

	size_t n = strlen(opt.dir) + 32;
	char *tmpl = malloc(n);
	if (!tmpl)
		die("out of memory");
	snprintf(tmpl, n, "%s/mmapfile-bench.XXXXXX", opt.dir);
	if (!mkdtemp(tmpl))
		die("mkdtemp(%s): %s", tmpl, strerror(errno));
	workdir = tmpl;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	gather_machine();
	measure_costs(workdir, &machine.costs);
	pool = xmalloc(POOL_MAIN + POOL_PAD);
	uint64_t seed = opt.seed ^ 0x5eed;
	for (size_t i = 0; i < POOL_MAIN; i += 8) {
		uint64_t v = mix64(seed + i);
		memcpy(pool + i, &v, 8);
	}
	memcpy(pool + POOL_MAIN, pool, POOL_PAD);
	bigbuf = xmalloc(MiB);

	int failed = 0;
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < NWORK; i++) {
		if (!workloads[i].selected)
			continue;
		uint64_t w0 = now_ns();
		run_workload(&workloads[i]);
		failed += workloads[i].failed;
		progress("%s: done in %.1f s", workloads[i].id, (double)(now_ns() - w0) / 1e9);
		rm_tree_keep(workdir, true);
	}
	progress("all done in %.1f s", (double)(now_ns() - t0) / 1e9);
	machine.load[1] = loadavg();
	rm_tree(workdir);
	workdir = NULL;

	if (opt.json_file) {
		jf = fopen(opt.json_file, "w");
		if (!jf)
			die("%s: %s", opt.json_file, strerror(errno));
		print_json();
		if (fclose(jf) != 0)
			die("%s: %s", opt.json_file, strerror(errno));
	}
	if (opt.json) {
		jf = stdout;
		print_json();
	} else {
		print_table();
	}
	return failed ? 1 : 0;
}
