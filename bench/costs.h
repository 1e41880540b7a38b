/* costs.h - the machine's own costs, printed beside the benchmark's figures. */
#ifndef BENCH_COSTS_H
#define BENCH_COSTS_H

#include <stdbool.h>
#include <stddef.h>

struct machine_costs {
	double syscall_ns;   /* syscall(SYS_getppid) */
	double pte_touch_ns; /* first touch of a cached page through a new 4 KiB PTE */
	double pmd_touch_ns; /* the same, PMD-aligned and MADV_HUGEPAGE; -1 without THP */
	size_t pmd_size;     /* hpage_pmd_size; 0 without THP */
	long pmd_kb;         /* of probe_kb, how much the PMD pass mapped by PMD entries */
	long probe_kb;
	char thp[16];        /* transparent_hugepage/enabled: always, madvise, never */
};

/* Measures in dir (a probe file, removed at once). */
void measure_costs(const char *dir, struct machine_costs *c);

#endif
