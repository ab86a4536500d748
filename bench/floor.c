/*
 * floor: what the kernel's own isolation work costs per task, with no
 * swarm code at all (issue 32). It runs N no-op tasks (`sh -c true`), P at
 * a time, and prints the wall time in milliseconds:
 *
 *   floor plain N P      fork, execve: what `xargs -P` does
 *   floor iso N P        the same, each task isolated as a sandboxed
 *                        swarm task is, in the fewest calls C allows
 *   floor wake N         what handing work from one process to another
 *                        costs on this machine: N round trips over two
 *                        pipes between two processes on CPUs 0 and 1,
 *                        then both on CPU 0; prints the microseconds of
 *                        a round trip in each case
 *
 * "wake" is the price of every hop a sandboxed spawn takes that a plain
 * one does not (coordinator, launcher, cell, worker, init, and back): a
 * wake-up of a process on another CPU. On a VM whose idle CPUs halt at
 * once (no guest halt-polling), that wake-up is an exit to the host.
 *
 * "iso" does per task what swarm's launcher, a sandbox cell and a worker
 * do between them, and nothing else: a PID namespace (the task's init), a
 * copy of a template mount namespace holding the worker's root (MOUNTS
 * mounts; swarm's holds about forty), a fresh /proc, a private /dev/shm,
 * a tmpfs cover with the task's own directory moved in (open_tree, as the
 * launcher hands it), then a worker under no_new_privs, a seccomp filter
 * laid out as a binary search over 64 denied calls (swarm's layout), a
 * Landlock domain of RULES path rules (swarm's has about fifty), its fds
 * closed, execve. Init reports the end on a pipe, then exits (the
 * namespace's teardown). Everything a swarm cell does ahead of its task is
 * done here in line, so its CPU counts alike: with two CPUs busy, work
 * done ahead is not free.
 *
 * Run as root (bench/floor.sh). No user namespace is made: as real root
 * the kernel does less (no ID mapping, no locked mounts), so this is a
 * floor under swarm's own path, not a copy of it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Landlock ABI 4 and 5 rights, for older headers. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#endif

static void die(const char *what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char *const ARGV[] = {"sh", "-c", "true", NULL};
static char *const ENVP[] = {"PATH=/usr/bin:/bin", NULL};

/* ---- the seccomp filter: a binary search over denied call numbers ---- */

static const int DENIED[] = {
    SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_bpf,
    SYS_perf_event_open, SYS_userfaultfd, SYS_keyctl, SYS_add_key,
    SYS_request_key, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot,
    SYS_unshare, SYS_setns, SYS_io_uring_setup, SYS_io_uring_enter,
    SYS_io_uring_register, SYS_kexec_load, SYS_kexec_file_load,
    SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_reboot,
    SYS_swapon, SYS_swapoff, SYS_acct, SYS_quotactl, SYS_lookup_dcookie,
    SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_fanotify_init,
    SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_move_mount,
    SYS_open_tree, SYS_mount_setattr, SYS_syslog, SYS_settimeofday,
    SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex, SYS_sethostname,
    SYS_setdomainname, SYS_iopl, SYS_ioperm, SYS_vhangup, SYS_nfsservctl,
    SYS_personality, SYS_uselib, SYS_ustat, SYS_sysfs, SYS_get_kernel_syms,
    SYS_query_module, SYS_create_module, SYS_pidfd_getfd, SYS_kcmp,
    SYS_migrate_pages, SYS_move_pages, SYS_mbind, SYS_set_mempolicy,
    SYS_fanotify_mark,
};
#define NDENIED (sizeof DENIED / sizeof DENIED[0])

static struct sock_filter prog[1024];
static int len;

static void emit(unsigned short code, unsigned char jt, unsigned char jf, unsigned k) {
  prog[len++] = (struct sock_filter){code, jt, jf, k};
}

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Emits a search of sorted nrs[lo..hi): returns ERRNO(EPERM) on a match,
 * ALLOW otherwise. */
static void search(const int *nrs, int lo, int hi) {
  if (hi - lo <= 3) {
    for (int i = lo; i < hi; i++) {
      emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, nrs[i]);
      emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EPERM);
    }
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    return;
  }
  int mid = (lo + hi) / 2;
  int at = len;
  emit(BPF_JMP | BPF_JGE | BPF_K, 0, 0, nrs[mid]);
  search(nrs, lo, mid);
  prog[at].jt = (unsigned char)(len - at - 1);
  search(nrs, mid, hi);
}

static void build_filter(void) {
  static int nrs[NDENIED];
  memcpy(nrs, DENIED, sizeof nrs);
  qsort(nrs, NDENIED, sizeof nrs[0], cmp);
  emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
  emit(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
  emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
  emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
  emit(BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000);
  emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EPERM);
  search(nrs, 0, (int)NDENIED);
}

/* ---- Landlock: rules on the launcher's O_PATH fds, opened once ---- */

static const char *RULE_PATHS[] = {
    "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/opt", "/sys",
    "/etc/alternatives", "/etc/bash.bashrc", "/etc/ca-certificates",
    "/etc/debian_version", "/etc/environment", "/etc/gitconfig", "/etc/group",
    "/etc/host.conf", "/etc/hostname", "/etc/hosts", "/etc/inputrc",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/locale.alias", "/etc/localtime", "/etc/mime.types",
    "/etc/nsswitch.conf", "/etc/os-release", "/etc/passwd", "/etc/profile",
    "/etc/protocols", "/etc/resolv.conf", "/etc/services", "/etc/ssl",
    "/etc/terminfo", "/etc/timezone", "/dev/null", "/dev/zero", "/dev/full",
    "/dev/random", "/dev/urandom", "/dev/tty", NULL,
};
static int rule_fds[64];
static unsigned long long rule_access[64];
static int nrules;
static const unsigned long long ALL_FS = (1ULL << 16) - 1; /* ABI 6: 16 rights */
static const unsigned long long FILE_FS =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
    LANDLOCK_ACCESS_FS_IOCTL_DEV;
static const unsigned long long READ_FS =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE |
    LANDLOCK_ACCESS_FS_READ_DIR;

static void open_rules(int want, const char *task_root) {
  for (int i = 0; RULE_PATHS[i] && nrules < want; i++) {
    int fd = open(RULE_PATHS[i], O_PATH | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    fstat(fd, &st);
    rule_fds[nrules] = fd;
    rule_access[nrules] = S_ISDIR(st.st_mode) ? READ_FS : (READ_FS & FILE_FS);
    nrules++;
  }
  /* The task's own writable directory (its tmp), by the same fd each time:
   * swarm opens each task's anew, a few more calls. */
  int fd = open(task_root, O_PATH | O_CLOEXEC | O_DIRECTORY);
  if (fd < 0) die("open the tasks' directory");
  rule_fds[nrules] = fd;
  rule_access[nrules] = ALL_FS;
  nrules++;
}

static int make_ruleset(void) {
  struct landlock_ruleset_attr attr = {.handled_access_fs = ALL_FS};
  int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (rs < 0) die("landlock_create_ruleset");
  for (int i = 0; i < nrules; i++) {
    struct landlock_path_beneath_attr pb = {.allowed_access = rule_access[i],
                                            .parent_fd = rule_fds[i]};
    if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
      die("landlock_add_rule");
  }
  return rs;
}

/* ---- the template: a root of MOUNTS mounts in a namespace of its own ---- */

static pid_t template_helper;

static int template_ns(const char *root, int mounts) {
  int ready[2];
  if (pipe(ready)) die("pipe");
  pid_t helper = fork();
  if (helper < 0) die("fork");
  if (helper == 0) {
    if (unshare(CLONE_NEWNS)) die("unshare the template's namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private");
    if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")) die("tmpfs root");
    char p[4096];
    const char *dirs[] = {"usr", "proc", "dev", "dev/shm", "tmp", "etc", "old", NULL};
    for (int i = 0; dirs[i]; i++) {
      snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
      mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/bin", root); symlink("usr/bin", p);
    snprintf(p, sizeof p, "%s/lib", root); symlink("usr/lib", p);
    snprintf(p, sizeof p, "%s/lib64", root); symlink("usr/lib64", p);
    int made = 0;
    snprintf(p, sizeof p, "%s/usr", root);
    if (mount("/usr", p, NULL, MS_BIND, NULL)) die("bind /usr");
    made++;
    /* The rest as binds of a directory, as swarm's /etc, /dev, toolchain
     * and /sys entries are (what is bound does not change what a mount
     * costs to copy and tear down). */
    for (int i = 0; made < mounts; i++, made++) {
      snprintf(p, sizeof p, "%s/etc/m%d", root, i);
      mkdir(p, 0755);
      if (mount("/usr", p, NULL, MS_BIND, NULL)) die("bind a directory");
    }
    snprintf(p, sizeof p, "%s/old", root);
    if (syscall(SYS_pivot_root, root, p)) die("pivot_root");
    if (chdir("/")) die("chdir");
    if (umount2("/old", MNT_DETACH)) die("detach the host's tree");
    if (write(ready[1], "r", 1) != 1) die("write");
    pause();
    _exit(0);
  }
  template_helper = helper;
  char c;
  if (read(ready[0], &c, 1) != 1) die("the template's helper failed");
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/mnt", helper);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open the template's namespace");
  return fd;
}

/* ---- one isolated task ---- */

static int tmpl;

/* The task's init: pid 1 of its PID namespace. Reports the worker's end
 * on `report`, then exits (tearing its namespaces down). */
static void init(int tree, int report) {
  if (setns(tmpl, CLONE_NEWNS)) die("setns the template");
  if (unshare(CLONE_NEWNS)) die("unshare a copy of the template");
  if (chdir("/")) die("chdir");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) die("mount /proc");
  if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m")) die("mount /dev/shm");
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")) die("mount the cover");
  if (mkdir("/tmp/t", 0755)) die("mkdir the task's mount point");
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, "/tmp/t", MOVE_MOUNT_F_EMPTY_PATH))
    die("move the task's tree in");
  close(tree);
  pid_t w = fork();
  if (w < 0) die("fork the worker");
  if (w == 0) {
    int rs = make_ruleset();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
    if (syscall(SYS_landlock_restrict_self, rs, 0)) die("landlock_restrict_self");
    struct sock_fprog fp = {.len = (unsigned short)len, .filter = prog};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp)) die("seccomp");
    syscall(SYS_close_range, 3, ~0U, 0);
    if (chdir("/tmp/t")) die("chdir the task's directory");
    execve("/bin/sh", ARGV, ENVP);
    _exit(127);
  }
  int status;
  while (waitpid(w, &status, 0) < 0 && errno == EINTR) {}
  unsigned char code = (unsigned char)(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  if (write(report, &code, 1) != 1) _exit(1);
  _exit(0);
}

/* Pins the calling process to CPU `cpu`. */
static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
}

/* Round trips of one byte over two pipes between this process, on CPU 0,
 * and a child on CPU `other`, N of them: the microseconds of one. (Left
 * to the scheduler, the two share a CPU for a while and then do not, so
 * each case is pinned.) */
static double round_trips(int n, int other) {
  int there[2], back[2];
  if (pipe(there) || pipe(back)) die("pipe");
  pin(0);
  pid_t c = fork();
  if (c < 0) die("fork");
  char b = 0;
  if (c == 0) {
    pin(other);
    for (int i = 0; i < n; i++)
      if (read(there[0], &b, 1) != 1 || write(back[1], &b, 1) != 1) _exit(1);
    _exit(0);
  }
  double t0 = now_ms();
  for (int i = 0; i < n; i++)
    if (write(there[1], &b, 1) != 1 || read(back[0], &b, 1) != 1) die("round trip");
  double us = (now_ms() - t0) * 1e3 / n;
  int status;
  if (waitpid(c, &status, 0) < 0 || status != 0) die("the other end");
  close(there[0]), close(there[1]), close(back[0]), close(back[1]);
  return us;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "wake") == 0) {
    int n = atoi(argv[2]);
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
      fprintf(stderr, "floor: wake needs two CPUs\n");
      return 1;
    }
    double apart = round_trips(n, 1), together = round_trips(n, 0);
    printf("%.1f %.1f\n", apart, together);
    return 0;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: floor plain|iso N P [MOUNTS [RULES [DIR]]] | floor wake N\n");
    return 2;
  }
  int iso = strcmp(argv[1], "iso") == 0;
  int n = atoi(argv[2]), p = atoi(argv[3]);
  int mounts = argc > 4 ? atoi(argv[4]) : 40;
  int rules = argc > 5 ? atoi(argv[5]) : 50;
  const char *dir = argc > 6 ? argv[6] : "/tmp";
  char root[4096], task[4096];
  if (iso) {
    snprintf(root, sizeof root, "%s/floor-root.%d", dir, getpid());
    snprintf(task, sizeof task, "%s/floor-task.%d", dir, getpid());
    if (mkdir(root, 0755) || mkdir(task, 0755)) die("mkdir");
    build_filter();
    open_rules(rules - 1, task);
    tmpl = template_ns(root, mounts);
  }
  struct pollfd slots[64];
  int running = 0, started = 0, done = 0, failed = 0;
  double t0 = now_ms();
  while (done < n) {
    while (running < p && started < n) {
      int pipefd[2];
      if (pipe2(pipefd, O_CLOEXEC)) die("pipe");
      if (iso) {
        int tree = (int)syscall(SYS_open_tree, AT_FDCWD, task,
                                OPEN_TREE_CLONE | AT_RECURSIVE | O_CLOEXEC);
        if (tree < 0) die("open_tree the task's directory");
        pid_t c = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
        if (c < 0) die("clone the task's init");
        if (c == 0) {
          close(pipefd[0]);
          init(tree, pipefd[1]);
        }
        close(tree);
      } else {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) {
          /* The command's end is the pipe's close at exit. */
          int keep = dup(pipefd[1]);
          (void)keep;
          execve("/bin/sh", ARGV, ENVP);
          _exit(127);
        }
      }
      close(pipefd[1]);
      slots[running++] = (struct pollfd){.fd = pipefd[0], .events = POLLIN};
      started++;
    }
    if (poll(slots, running, -1) < 0 && errno != EINTR) die("poll");
    for (int i = 0; i < running; i++) {
      if (!slots[i].revents) continue;
      unsigned char code = 0;
      if (iso && read(slots[i].fd, &code, 1) != 1) code = 1;
      if (code) { failed++; if (failed == 1) fprintf(stderr, "floor: a task ended with %d\n", code); }
      close(slots[i].fd);
      slots[i--] = slots[--running];
      done++;
    }
    /* Reaped here, not by SIGCHLD's SIG_IGN: so that their CPU time
     * counts in ours (getrusage, time(1)). */
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
  }
  /* The last inits' teardown, and the template with its helper. */
  if (iso) kill(template_helper, SIGKILL);
  for (;;) {
    if (waitpid(-1, NULL, 0) > 0 || errno == EINTR) continue;
    break;
  }
  double t1 = now_ms();
  printf("%.1f\n", t1 - t0);
  if (failed) {
    fprintf(stderr, "floor: %d of %d tasks failed\n", failed, n);
    return 1;
  }
  if (iso) {
    rmdir(root);
    rmdir(task);
  }
  return 0;
}
