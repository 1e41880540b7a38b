/* costs.c - what this machine charges for the things a mapping pays and
 * read(2) does not, measured before the workloads so that their figures can
 * be read against it: a system call, the first touch of a page through a new
 * 4 KiB PTE, the same through a PMD entry, and whether the file system gives
 * the page cache PMD-sized folios at all. */
#define _GNU_SOURCE
#include "costs.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROBE_LEN ((size_t)64 << 20)
/* write(2) in chunks of a PMD: on ext4 the page cache then makes PMD-sized
 * folios (in 1 MiB chunks it makes none, and nothing can map it by PMD). */
#define PROBE_CHUNK ((size_t)2 << 20)

static uint64_t clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t read_pmd(void)
{
	FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
	unsigned long long v = 0;
	if (fp) {
		if (fscanf(fp, "%llu", &v) != 1)
			v = 0;
		fclose(fp);
	}
	return (size_t)v;
}

/* The bracketed word of the THP "enabled" setting: always, madvise, never. */
static void read_thp_mode(char *out, size_t len)
{
	snprintf(out, len, "none");
	FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	char line[128];
	if (!fp)
		return;
	if (fgets(line, sizeof line, fp)) {
		char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
		if (a && b && b - a - 1 < (long)len) {
			memcpy(out, a + 1, (size_t)(b - a - 1));
			out[b - a - 1] = 0;
		}
	}
	fclose(fp);
}

/* FilePmdMapped of the VMA that starts at p, in KiB; -1 if not found. */
static long pmd_mapped_kb(const void *p)
{
	FILE *fp = fopen("/proc/self/smaps", "re");
	char line[512];
	long kb = -1;
	bool in = false;
	if (!fp)
		return -1;
	while (fgets(line, sizeof line, fp)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo == (uintptr_t)p;
			continue;
		}
		long v;
		if (in && sscanf(line, "FilePmdMapped: %ld", &v) == 1) {
			kb = v;
			break;
		}
	}
	fclose(fp);
	return kb;
}

/* Map the probe file at a PMD-aligned address (or anywhere when pmd is 0),
 * touch a byte of every 4 KiB page, and return the ns per page. */
static double touch_pages(int fd, size_t pmd, int advice, long *pmd_kb)
{
	size_t extra = pmd ? pmd : 0;
	char *r = mmap(NULL, PROBE_LEN + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return -1;
	char *a = pmd ? (char *)(((uintptr_t)r + pmd - 1) & ~(uintptr_t)(pmd - 1)) : r;
	char *m = mmap(a, PROBE_LEN, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
	double ns = -1;
	if (m != MAP_FAILED) {
		madvise(m, PROBE_LEN, advice);
		volatile unsigned sum = 0;
		uint64_t t0 = clock_ns();
		for (size_t o = 0; o < PROBE_LEN; o += 4096)
			sum += (unsigned char)m[o];
		ns = (double)(clock_ns() - t0) / (double)(PROBE_LEN / 4096);
		(void)sum;
		*pmd_kb = pmd_mapped_kb(m);
	}
	munmap(r, PROBE_LEN + extra);
	return ns;
}

void measure_costs(const char *dir, struct machine_costs *c)
{
	memset(c, 0, sizeof *c);
	c->pte_touch_ns = c->pmd_touch_ns = -1;
	c->pmd_kb = -1;
	c->probe_kb = (long)(PROBE_LEN >> 10);
	read_thp_mode(c->thp, sizeof c->thp);
	c->pmd_size = read_pmd();

	enum { CALLS = 200000 };
	uint64_t t0 = clock_ns();
	for (int i = 0; i < CALLS; i++)
		syscall(SYS_getppid);
	c->syscall_ns = (double)(clock_ns() - t0) / CALLS;

	char path[4200];
	snprintf(path, sizeof path, "%s/costs-probe", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	unlink(path);
	char *chunk = malloc(PROBE_CHUNK);
	if (!chunk) {
		close(fd);
		return;
	}
	memset(chunk, 0x5a, PROBE_CHUNK);
	for (size_t o = 0; o < PROBE_LEN; o += PROBE_CHUNK)
		if (pwrite(fd, chunk, PROBE_CHUNK, (off_t)o) != (ssize_t)PROBE_CHUNK) {
			free(chunk);
			close(fd);
			return;
		}
	free(chunk);
	/* The file is in the page cache: each figure is the mapping's cost
	 * alone, the second of two passes. */
	long unused;
	for (int pass = 0; pass < 2; pass++) {
		c->pte_touch_ns = touch_pages(fd, 0, MADV_NOHUGEPAGE, &unused);
		if (c->pmd_size)
			c->pmd_touch_ns = touch_pages(fd, c->pmd_size, MADV_HUGEPAGE, &c->pmd_kb);
	}
	close(fd);
}
