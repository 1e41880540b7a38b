/* check_ioerror.c - a real device error under the page cache (spec,
 * semantics 7: "sync returns once every byte written through the handle
 * and the file's size are on stable storage; a writeback error comes back
 * as EIO"; 13: "No write that returned success is lost in silence").
 *
 * The device: a tmpfs of 16 MiB holding a sparse image of 64 MiB, a loop
 * device over the image, an ext4 without a journal on it, mounted with
 * errors=continue.  The ext4 has room for everything written; the tmpfs
 * under it has not, so once more than it holds is written, the loop
 * device's writes fail and the ext4 pages' writeback fails: a true
 * writeback error, as a failing disk gives, which the kernel hands to
 * fsync(2).
 *
 * The oracle is a twin rig on which the same is done with a plain
 * descriptor: its fsync(2) must fail (else the rig provokes nothing) and
 * says which errno this kernel reports (EIO, or ENOSPC since loop devices
 * pass the backing file's error on).  Through the handle:
 *   - 4 MiB written and made durable by a successful mmapfile_sync;
 *   - 32 MiB more, then mmapfile_sync (_i 0) or mmapfile_flush_start and
 *     mmapfile_flush_wait (_i 1) must fail with -1 and EIO (whatever errno
 *     the twin's fsync got): the error is not lost in silence;
 *   - the handle still works: a 4 KiB write inside the durable part and a
 *     read of it;
 *   - close succeeds or reports the error;
 *   - after an unmount and a new mount (no page cache left), read(2) on a
 *     fresh descriptor finds the 4 MiB that the first sync made durable.
 *
 * Needs root, a mount namespace of its own, loop devices and mkfs.ext4;
 * otherwise the program is skipped (exit 77, "SKIPPED: reason").  Loop
 * devices are set to detach themselves when their last user goes, and the
 * program unmounts what a test left mounted, so nothing stays behind. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)
#define DURABLE (4 * MiB)
#define MORE (32 * MiB)
#define SMALL_OFF (8 * KiB)
#define SMALL_LEN ((size_t)4096)

static const char *const mkfs_paths[] = { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4",
	                                  "/usr/bin/mkfs.ext4", "/bin/mkfs.ext4" };

static const char *find_mkfs(void)
{
	for (size_t i = 0; i < sizeof mkfs_paths / sizeof mkfs_paths[0]; i++)
		if (access(mkfs_paths[i], X_OK) == 0)
			return mkfs_paths[i];
	return NULL;
}

/* mkfs.ext4 without a journal (a journal write failing would abort it and
 * turn the file system read-only) on the image file; blocks of 4 KiB, so
 * that the file's extents stay in its inode (with 1 KiB blocks an extent
 * block is added, its write fails, and the whole file is lost: not what
 * this test is about). */
static void mkfs_ext4(const char *img)
{
	const char *mkfs = find_mkfs();
	ck_assert_ptr_nonnull(mkfs);
	pid_t pid = tu_fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(mkfs, "mkfs.ext4", "-q", "-F", "-b", "4096", "-O", "^has_journal", "-E", "nodiscard", img,
		      (char *)NULL);
		_exit(127);
	}
	int st = tu_wait(pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s: status %#x", mkfs, img, st);
}

/* A loop device over img that detaches itself when its last user (the
 * returned descriptor, the mount) goes; its path in dev. */
static int loop_attach(const char *img, char *dev, size_t len)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	ck_assert_msg(ctl >= 0, "/dev/loop-control: %s", strerror(errno));
	int bfd = open(img, O_RDWR | O_CLOEXEC);
	ck_assert_msg(bfd >= 0, "%s: %s", img, strerror(errno));
	for (int tries = 0;; tries++) {
		ck_assert_int_lt(tries, 50);
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		ck_assert_msg(n >= 0, "LOOP_CTL_GET_FREE: %s", strerror(errno));
		snprintf(dev, len, "/dev/loop%d", n);
		int lfd = open(dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0 && errno == ENOENT) { /* no node yet: udev-less machines */
			ck_assert_int_eq(mknod(dev, S_IFBLK | 0600, makedev(7, (unsigned)n)), 0);
			lfd = open(dev, O_RDWR | O_CLOEXEC);
		}
		ck_assert_msg(lfd >= 0, "%s: %s", dev, strerror(errno));
		struct loop_config cfg;
		memset(&cfg, 0, sizeof cfg);
		cfg.fd = (unsigned)bfd;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		int rc = ioctl(lfd, LOOP_CONFIGURE, &cfg), err = errno;
		if (rc != 0 && (err == EINVAL || err == ENOTTY)) {
			/* Before Linux 5.8: the two steps. */
			rc = ioctl(lfd, LOOP_SET_FD, bfd);
			err = errno;
			if (rc == 0) {
				ck_assert_msg(ioctl(lfd, LOOP_SET_STATUS64, &cfg.info) == 0,
				              "LOOP_SET_STATUS64 %s: %s", dev, strerror(errno));
			}
		}
		if (rc == 0) {
			close(bfd);
			close(ctl);
			return lfd;
		}
		close(lfd);
		ck_assert_msg(err == EBUSY, "attaching %s: %s", dev, strerror(err));
		/* Taken by someone else between GET_FREE and CONFIGURE: again. */
	}
}

/* ---- the rig: tmpfs, image, loop device, ext4 ---- */

struct rig {
	const char *tmpfs;
	char img[4200], mnt[4200], dev[64];
	int loopfd;
	bool mounted;
};

static struct rig *live[2];

static void rig_mount(struct rig *r)
{
	ck_assert_msg(mount(r->dev, r->mnt, "ext4", MS_NOSUID | MS_NODEV, "errors=continue") == 0,
	              "mount ext4 %s on %s: %s", r->dev, r->mnt, strerror(errno));
	r->mounted = true;
}

static void rig_umount(struct rig *r)
{
	if (r->mounted) {
		/* Writeback of the failed pages may fail again: the unmount
		 * goes through all the same. */
		if (umount2(r->mnt, 0) != 0)
			umount2(r->mnt, MNT_DETACH);
		r->mounted = false;
	}
}

static void rig_down(struct rig *r)
{
	rig_umount(r);
	if (r->loopfd >= 0) {
		close(r->loopfd); /* the last user: the loop device detaches */
		r->loopfd = -1;
	}
}

/* At the exit of a test process, also one that failed: before the
 * fixture's teardown removes the tmpfs and the directories. */
static void rigs_down(void)
{
	for (int i = 0; i < 2; i++)
		if (live[i])
			rig_down(live[i]);
}

static void rig_up(struct rig *r, const char *name)
{
	static bool registered;
	if (!registered) {
		atexit(rigs_down); /* runs before tu_teardown, registered earlier */
		registered = true;
	}
	char tname[64], mname[64];
	snprintf(tname, sizeof tname, "%s-tmpfs", name);
	snprintf(mname, sizeof mname, "%s-ext4", name);
	r->loopfd = -1;
	r->mounted = false;
	r->tmpfs = tu_mount(tname, "tmpfs", "size=16m,mode=0700");
	ck_assert_msg(r->tmpfs != NULL, "mount tmpfs: %s", strerror(errno));
	snprintf(r->img, sizeof r->img, "%s/ext4.img", r->tmpfs);
	int fd = open(r->img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 64 * MiB), 0);
	close(fd);
	mkfs_ext4(r->img);
	r->loopfd = loop_attach(r->img, r->dev, sizeof r->dev);
	live[live[0] ? 1 : 0] = r;
	snprintf(r->mnt, sizeof r->mnt, "%s", tu_path(mname));
	ck_assert_int_eq(mkdir(r->mnt, 0700), 0);
	rig_mount(r);
}

static const char *rig_file(struct rig *r)
{
	static char p[4300];
	snprintf(p, sizeof p, "%s/f", r->mnt);
	return p;
}

/* ---- the oracle: the same with a plain descriptor ---- */

static void write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		ck_assert_msg(w > 0, "write: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

/* The errno fsync(2) gives on the twin after the writes beyond the tmpfs. */
static int twin_errno(const unsigned char *data)
{
	struct rig t;
	rig_up(&t, "twin");
	int fd = open(rig_file(&t), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	write_all(fd, data, (size_t)DURABLE);
	ck_assert_msg(fsync(fd) == 0, "twin: fsync of the first 4 MiB: %s", strerror(errno));
	write_all(fd, data + DURABLE, (size_t)MORE);
	int rc = fsync(fd), err = errno;
	ck_assert_msg(rc == -1, "twin: fsync(2) succeeded after %lld MiB on a 16 MiB tmpfs: the rig "
	              "provokes no writeback error", (long long)((DURABLE + MORE) / MiB));
	printf("check_ioerror: fsync(2) on the twin: %s", strerror(err));
	rc = fsync(fd);
	printf("; again: %s\n", rc == 0 ? "0" : strerror(errno));
	close(fd);
	/* The rig keeps what a successful fsync made durable. */
	rig_umount(&t);
	rig_mount(&t);
	fd = open(rig_file(&t), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unsigned char *got = tu_xmalloc((size_t)DURABLE);
	tu_pread_all(fd, got, (size_t)DURABLE, 0);
	ck_assert_msg(tu_first_diff(got, data, (size_t)DURABLE) == (size_t)DURABLE,
	              "twin: the rig lost data a successful fsync(2) made durable");
	free(got);
	close(fd);
	rig_down(&t);
	live[0] = live[1] = NULL;
	return err;
}

/* ---- the test ---- */

START_TEST(test_writeback_error)
{
	const bool flush = _i == 1;
	const char *what = flush ? "mmapfile_flush_start/mmapfile_flush_wait" : "mmapfile_sync";
	unsigned char *data = tu_random_bytes((size_t)(DURABLE + MORE), 4242);
	int kernel_err = twin_errno(data);

	struct rig r;
	rig_up(&r, "rig");
	mmapfile_t *f = mmapfile_open(rig_file(&r), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	for (off_t o = 0; o < DURABLE; o += MiB)
		ck_assert_int_eq(mmapfile_write(f, data + o, (size_t)MiB), (ssize_t)MiB);
	ck_assert_msg(mmapfile_sync(f) == 0, "sync of the first 4 MiB: %s", strerror(errno));

	/* More than the tmpfs under the device holds. */
	for (off_t o = DURABLE; o < DURABLE + MORE; o += MiB)
		ck_assert_int_eq(mmapfile_write(f, data + o, (size_t)MiB), (ssize_t)MiB);
	int rc, err;
	errno = 0;
	if (flush) {
		rc = mmapfile_flush_start(f);
		err = errno;
		if (rc == 0) {
			errno = 0;
			rc = mmapfile_flush_wait(f);
			err = errno;
		} else {
			printf("check_ioerror: flush_start itself reported %s\n", strerror(err));
			mmapfile_flush_wait(f);
		}
	} else {
		rc = mmapfile_sync(f);
		err = errno;
	}
	/* EIO whatever the kernel's errno (spec, point 7: ENOSPC from a loop
	 * device over a full file system is a writeback error too). */
	ck_assert_msg(rc == -1 && err == EIO,
	              "%s after a writeback error (fsync(2) on the twin: %s): returned %d, errno %s",
	              what, strerror(kernel_err), rc, rc ? strerror(err) : "-");
	printf("check_ioerror: %s: %s\n", what, strerror(err));

	/* The handle still works. */
	unsigned char small[SMALL_LEN], back[SMALL_LEN];
	tu_fill(small, SMALL_LEN, 99);
	ck_assert_int_eq(mmapfile_writeat(f, small, SMALL_LEN, SMALL_OFF), (ssize_t)SMALL_LEN);
	ck_assert_int_eq(mmapfile_readat(f, back, SMALL_LEN, SMALL_OFF), (ssize_t)SMALL_LEN);
	ck_assert_msg(memcmp(small, back, SMALL_LEN) == 0, "the small write does not read back");
	ck_assert_int_eq(mmapfile_size(f), DURABLE + MORE);
	errno = 0;
	rc = mmapfile_sync(f);
	printf("check_ioerror: the next sync: %s\n", rc == 0 ? "0" : strerror(errno));
	ck_assert_msg(rc == 0 || errno == EIO, "the next sync: %s",
	              strerror(errno));
	errno = 0;
	rc = mmapfile_close(f);
	printf("check_ioerror: close: %s\n", rc == 0 ? "0" : strerror(errno));
	ck_assert_msg(rc == 0 || errno == EIO, "close: %s", strerror(errno));

	/* No page cache left: what the first sync made durable is on the
	 * device (the small write's 4 KiB may be old or new). */
	rig_umount(&r);
	rig_mount(&r);
	int fd = open(rig_file(&r), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(tu_fd_size(fd), DURABLE);
	unsigned char *got = tu_xmalloc((size_t)DURABLE);
	tu_pread_all(fd, got, (size_t)DURABLE, 0);
	close(fd);
	size_t i = tu_first_diff(got, data, (size_t)SMALL_OFF);
	ck_assert_msg(i == (size_t)SMALL_OFF, "durable byte %zu lost after the writeback error", i);
	ck_assert_msg(memcmp(got + SMALL_OFF, data + SMALL_OFF, SMALL_LEN) == 0 ||
	                      memcmp(got + SMALL_OFF, small, SMALL_LEN) == 0,
	              "the 4 KiB rewritten after the error are neither the old nor the new bytes");
	size_t rest = (size_t)(DURABLE - SMALL_OFF) - SMALL_LEN;
	i = tu_first_diff(got + SMALL_OFF + SMALL_LEN, data + SMALL_OFF + SMALL_LEN, rest);
	ck_assert_msg(i == rest, "durable byte %zu lost after the writeback error",
	              (size_t)SMALL_OFF + SMALL_LEN + i);
	free(got);
	rig_down(&r);
	free(data);
}
END_TEST

/* ---- main ---- */

static int skip(const char *why, int err)
{
	printf("SKIPPED: check_ioerror: %s%s%s\n", why, err ? ": " : "", err ? strerror(err) : "");
	return 77;
}

/* Unmount what a test process that died left mounted (its loop device
 * then detaches itself). */
static void unmount_leftovers(void)
{
	FILE *m = fopen("/proc/self/mounts", "r");
	if (!m)
		return;
	char line[8192], dirs[16][4200];
	int n = 0;
	while (n < 16 && fgets(line, sizeof line, m)) {
		char src[4200], dir[4200];
		if (sscanf(line, "%4199s %4199s", src, dir) == 2 && strstr(dir, "/mmapfile-test-") &&
		    (strstr(dir, "-ext4") || strstr(dir, "-tmpfs")))
			snprintf(dirs[n++], sizeof dirs[0], "%s", dir);
	}
	fclose(m);
	while (n-- > 0) /* the ext4 on top first */
		umount2(dirs[n], MNT_DETACH);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		return skip("loop devices and mounts need root", 0);
	if (!find_mkfs())
		return skip("mkfs.ext4 (e2fsprogs) is not installed", 0);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return skip("no loop devices (/dev/loop-control)", errno);
	close(ctl);
	const char *step;
	if (tu_private_mounts(&step) != 0)
		return skip(step, errno);
	char probe[4096];
	snprintf(probe, sizeof probe, "%s/mmapfile-probe-XXXXXX", tu_tmpdir());
	if (!mkdtemp(probe))
		return skip("mkdtemp", errno);
	int rc = mount("mmapfile-test", probe, "tmpfs", 0, "size=64k"), err = errno;
	if (rc == 0)
		umount2(probe, MNT_DETACH);
	rmdir(probe);
	if (rc != 0)
		return skip("mounting a tmpfs", err);

	Suite *s = suite_create("ioerror");
	TCase *tc = tu_tcase("writeback", 120);
	tcase_add_loop_test(tc, test_writeback_error, 0, 2);
	suite_add_tcase(s, tc);
	rc = tu_run(s);
	unmount_leftovers();
	return rc;
}
