//! Attacks that once got out of the sandbox (issue 14), one test per class:
//! host services through pathname Unix sockets, set-user-ID files, the
//! identity a task runs as, the repository's secrets and other tasks' refs
//! through `.git`, and a kept worktree booby-trapped for the user. Each runs
//! through the real `swarm` binary in the real sandbox; each checks both
//! what the task saw and that the host is unchanged afterwards.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::sandbox::{assert_all_denied, attack, sandbox_available};
use crate::support::{TestRepo, hermetic, task};

/// A listening Unix socket at `path` that must never see a connection.
struct Listener {
    path: PathBuf,
    socket: UnixListener,
}

impl Listener {
    fn new(path: PathBuf) -> Self {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        let socket = UnixListener::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        // Anyone may connect, as to a host service with a lax mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        Self { path, socket }
    }

    #[track_caller]
    fn assert_untouched(&self) {
        match self.socket.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{} was reached: {other:?}", self.path.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(self.path.parent().unwrap());
    }
}

#[test]
fn host_unix_sockets_are_out_of_sight_and_reach() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let tag = format!("swarm-e2e-sock-{}", std::process::id());
    // Where host services keep their sockets: beside the repository, in
    // the user's home, in /tmp, /run and /dev/shm.
    let mut places = vec![
        repo.outside().join("db.sock"),
        repo.home().join(".ssh/agent.sock"),
        Path::new("/tmp").join(&tag).join("docker.sock"),
    ];
    for dir in ["/run", "/dev/shm"] {
        if Path::new(dir).is_dir() {
            places.push(Path::new(dir).join(&tag).join("bus.sock"));
        }
    }
    let listeners: Vec<Listener> = places.into_iter().map(Listener::new).collect();
    let mut script = String::new();
    for (i, l) in listeners.iter().enumerate() {
        let p = l.path.display();
        script.push_str(&format!(
            "try connect-{i} python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' {p}\n\
             try see-{i} test -e {p}\n"
        ));
    }
    // What the task's file system shows of the usual socket directories:
    // nothing, but for the directories that lead to its own paths.
    let root_name = repo
        .root()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    script.push_str(&format!(
        "for d in /run /var /var/run /var/tmp /dev/shm /home /root /mnt /media /srv; do\n\
         \x20 try list-$d sh -c \"ls -A $d | grep -q .\"\n\
         done\n\
         try list-/tmp sh -c \"ls -A /tmp | grep -vqx {root_name}\"\n"
    ));
    let results = attack(&repo, &[], &[("sockets", script)]);
    let expected = listeners.len() * 2 + 11;
    assert_all_denied(&results, expected);
    for l in &listeners {
        l.assert_untouched();
    }
}

/// Python giving the file `sys.argv[1]` a file capability (CAP_SETUID,
/// effective): a task tries it, and the control run unconfined as root
/// shows the same call works where it is allowed.
const GIVE_CAPABILITY: &str = "os.setxattr(sys.argv[1], \"security.capability\", \
     bytes.fromhex(\"0100000280000000000000000000000000000000\"))";

#[test]
fn no_task_can_leave_a_set_user_id_file_behind() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let script = |dir: &str| {
        let py = |name: &str, code: &str, file: &str| {
            format!("try {name}-{dir} python3 -c 'import os, stat, sys; {code}' {dir}/{file}\n")
        };
        [
            format!("cp /bin/sh {dir}/sh\n"),
            format!("try chmod-4755-{dir} chmod 4755 {dir}/sh\n"),
            format!("try chmod-u+s-{dir} chmod u+s {dir}/sh\n"),
            format!("try chmod-g+s-{dir} chmod g+s {dir}/sh\n"),
            format!("try install-{dir} install -m 6755 /bin/sh {dir}/sh2\n"),
            py(
                "open",
                "os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o4755)",
                "sh3",
            ),
            py(
                "fchmod",
                "os.fchmod(os.open(sys.argv[1], os.O_RDONLY), 0o2755)",
                "sh",
            ),
            py(
                "mknod",
                "os.mknod(sys.argv[1], stat.S_IFREG | 0o4755)",
                "sh4",
            ),
            py(
                "tmpfile",
                "os.open(os.path.dirname(sys.argv[1]), os.O_TMPFILE | os.O_WRONLY, 0o4755)",
                "x",
            ),
            // A file capability (CAP_SETUID, effective) on a file it made:
            // shown through an idmapped copy, that file is root's on disk.
            py("file-capability", GIVE_CAPABILITY, "sh"),
        ]
        .concat()
    };
    let results = attack(
        &repo,
        &[],
        &[
            ("worktree", script(".")),
            ("tmp", script("$TMPDIR")),
            (
                // Even a set-user-ID file could not be run as such there.
                "nosuid",
                "try writable-mount-without-nosuid sh -c 'm=$(grep -E \" ($PWD|$TMPDIR) \" /proc/self/mountinfo); \
                 test $(echo \"$m\" | wc -l) -ne 2 || echo \"$m\" | grep -v nosuid | grep -q .'"
                    .into(),
            ),
        ],
    );
    assert_all_denied(&results, 19);
    // Where swarm keeps what tasks ran in: the runs' tmp directories and
    // the worktrees (warm ones' kept tmp directories among them).
    let kept = [repo.path().join(".swarm"), repo.worktree_home()];
    // Nothing there carries a file capability: the same call, unconfined
    // as root, gives one to a copy of sh (so the tasks' was refused, not
    // malformed), and the walk finds it.
    let capable = |roots: &[&std::path::Path]| {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import os, sys\n\
                 for root in sys.argv[1:]:\n\
                 \tfor top, dirs, files in os.walk(root):\n\
                 \t\tfor f in files:\n\
                 \t\t\tp = os.path.join(top, f)\n\
                 \t\t\tif not os.path.islink(p) and 'security.capability' in os.listxattr(p):\n\
                 \t\t\t\tprint(p)",
            ])
            .args(roots)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if nix::unistd::geteuid().is_root() {
        let control = tempfile::tempdir().unwrap();
        let sh = control.path().join("sh");
        std::fs::copy("/bin/sh", &sh).unwrap();
        let given = std::process::Command::new("python3")
            .args(["-c", &format!("import os, sys; {GIVE_CAPABILITY}")])
            .arg(&sh)
            .output()
            .unwrap();
        assert!(given.status.success(), "{given:?}");
        assert_eq!(capable(&[control.path()]), format!("{}\n", sh.display()));
    }
    assert_eq!(capable(&[&kept[0], &kept[1]]), "");
    // ...nor the bits.
    let mut stack = kept.to_vec();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.path().symlink_metadata().unwrap();
            assert_eq!(
                meta.mode() & 0o6000,
                0,
                "{} is set-user-ID or set-group-ID",
                entry.path().display()
            );
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
}

#[test]
fn tasks_run_as_an_unprivileged_user() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let keys = repo.home().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("secret.key"), "PRIVATE").unwrap();
    std::fs::set_permissions(
        keys.join("secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(keys.join("public.txt"), "public").unwrap();
    let plan = repo.plan(
        "identity.toml",
        &format!(
            "[swarm]\nname = \"ids\"\non_failure = \"continue\"\nread_paths = [{keys:?}]\n\n\
             [[task]]\nid = \"who\"\nrun = '''\n\
             id -u > uid.txt\nid -G > groups.txt\ncp {keys}/public.txt public.txt\n\
             if cat {keys}/secret.key > secret.txt 2>/dev/null; then echo read > secret-read.txt; fi\n\
             rm -f secret.txt\necho mine > $HOME/mine.txt\nstat -c %u README.md > owner.txt\n\
             exit 3\n'''\n\n\
             [[task]]\nid = \"many\"\nrun = '''\n\
             mkdir $HOME/many && for i in $(seq 12); do echo x > $HOME/many/f$i; done\n\
             exit 3\n'''\n",
            keys = keys.display().to_string()
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let at = "refs/swarm/ids/who";
    assert_eq!(repo.show(at, "public.txt"), "public");
    let me = nix::unistd::geteuid();
    if me.is_root() {
        // As root, swarm's workers are nobody: a root-only file stays
        // closed even where a read-only rule shows its directory.
        assert_eq!(repo.show(at, "uid.txt"), "65534");
        assert_eq!(repo.show(at, "groups.txt"), "65534");
        assert_eq!(repo.show(at, "owner.txt"), "65534");
        assert!(
            !repo.has_rev(&format!("{at}:secret-read.txt")),
            "a task read a root-only file"
        );
        // Once the task is over, what it left is root's again (the kept
        // worktree and its private tmp).
        let kept = repo.worktree("ids", "who");
        for file in [kept.join("uid.txt"), kept.join("README.md"), kept.clone()] {
            assert_eq!(
                file.symlink_metadata().unwrap().uid(),
                0,
                "{}",
                file.display()
            );
        }
        // A tmp of a few entries is taken back where the task ended, a
        // larger one on a thread of its own: both whole. (Its HOME: the
        // TMPDIR of a task in a warm worktree is the tmp kept with it,
        // the sandbox user's between runs as a build cache is.)
        let tmp = repo.path().join(".swarm/runs/ids/tmp");
        assert!(tmp.join("who/mine.txt").exists());
        assert!(tmp.join("many/many/f12").exists());
        for task in ["who", "many"] {
            let mut stack = vec![tmp.join(task)];
            while let Some(path) = stack.pop() {
                let meta = path.symlink_metadata().unwrap();
                assert_eq!(meta.uid(), 0, "{}", path.display());
                if meta.is_dir() {
                    stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                }
            }
        }
    } else {
        assert_eq!(repo.show(at, "uid.txt"), me.to_string());
    }
}

#[test]
fn the_git_directory_shows_no_secrets_and_no_other_task() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    // What a CI checkout leaves in .git/config, and refs of other work.
    repo.git(&[
        "config",
        "http.https://example.com/.extraheader",
        "AUTHORIZATION: basic SECRET-TOKEN-1",
    ]);
    repo.git(&[
        "config",
        "remote.origin.url",
        "https://user:SECRET-TOKEN-2@example.com/x.git",
    ]);
    repo.git(&["config", "core.sshCommand", "ssh -i /secret/deploy-key"]);
    repo.write("sibling.txt", "sibling result\n");
    repo.git(&["add", "sibling.txt"]);
    let tree = repo.git(&["write-tree"]);
    let sibling = repo.git(&["commit-tree", &tree, "-p", "HEAD", "-m", "sibling"]);
    repo.git(&["update-ref", "refs/swarm/other/sibling", &sibling]);
    repo.git(&["reset", "-q", "--hard"]);
    repo.git(&["branch", "feature"]);
    let script = String::from(
        "common=$(git rev-parse --git-common-dir)\n\
         try token-in-config sh -c 'git config --list | grep -q SECRET'\n\
         try token-in-files sh -c \"grep -rqs SECRET $common\"\n\
         try remote git remote get-url origin\n\
         try ssh-command git config core.sshCommand\n\
         try sibling-ref git rev-parse -q --verify refs/swarm/other/sibling\n\
         try sibling-by-path cat $common/refs/swarm/other/sibling\n\
         try any-ref sh -c 'git for-each-ref | grep -q .'\n\
         try hooks ls $common/hooks\n\
         try logs ls $common/logs\n\
         git status --porcelain > status.txt\n\
         git log -1 --format=%H > head.txt\n\
         git cat-file -p HEAD:README.md > readme-from-git.txt\n\
         git rev-parse --is-inside-work-tree > inside.txt\n\
         echo changed >> docs/guide.txt\n\
         git diff --stat > diff.txt\n\
         git checkout -q -- docs/guide.txt 2>/dev/null || true\n",
    );
    let results = attack(&repo, &[], &[("a", script.clone()), ("b", script)]);
    assert_all_denied(&results, 18);
    let base = repo.git(&["rev-parse", "main"]);
    for t in ["a", "b"] {
        let at = format!("refs/swarm/attack/{t}");
        assert_eq!(repo.show(&at, "head.txt"), base);
        assert_eq!(repo.show(&at, "readme-from-git.txt"), "# test repo");
        assert_eq!(repo.show(&at, "inside.txt"), "true");
        assert!(
            repo.show(&at, "diff.txt").contains("docs/guide.txt"),
            "git diff did not work in the task"
        );
    }
}

#[test]
fn read_only_tasks_share_one_git_view_that_none_of_them_can_change() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    repo.git(&[
        "config",
        "http.https://example.com/.extraheader",
        "AUTHORIZATION: basic SECRET-TOKEN-1",
    ]);
    // Each task tries to leave something in the view for the next one
    // (they run one after another), then reports what it saw there.
    let script = r#"common=$(git rev-parse --git-common-dir)
try() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "ALLOWED $n"; else echo "denied $n"; fi; }
try config sh -c "echo '[core] hooksPath = /tmp' >> $common/config"
try head sh -c "echo 'ref: refs/heads/evil' > $common/HEAD"
try ref sh -c "git rev-parse HEAD > $common/refs/heads/evil"
try record sh -c "mkdir $common/worktrees/other"
try exclude sh -c "echo '*' >> $common/info/exclude"
try token sh -c "grep -rqs SECRET $common"
echo "head $(git rev-parse HEAD)"
echo "status $(git status --porcelain | wc -l)"
echo "records $(ls $common/worktrees | wc -l)"
echo "refs $(git for-each-ref | wc -l)"
"#;
    let mut plan = String::from("[swarm]\nname = \"ro\"\n\n");
    for id in ["a", "b", "c"] {
        plan.push_str(&format!(
            "[[task]]\nid = \"{id}\"\nisolation = \"readonly\"\nrun = '''\n{script}'''\n\n"
        ));
    }
    let p = repo.plan("ro.toml", &plan);
    repo.run_plan(&p, &["-j", "1"]).assert_code(0);
    let head = repo.git(&["rev-parse", "main"]);
    let run = repo.path().join(".swarm/runs/ro");
    for id in ["a", "b", "c"] {
        let out = std::fs::read_to_string(run.join(format!("logs/{id}/1.out"))).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[..6],
            [
                "denied config",
                "denied head",
                "denied ref",
                "denied record",
                "denied exclude",
                "denied token"
            ],
            "task {id}"
        );
        let head_line = format!("head {head}");
        assert_eq!(
            lines[6..],
            [head_line.as_str(), "status 0", "records 1", "refs 0"],
            "task {id}: git in a read-only checkout sees main, nothing else"
        );
    }
    // Neither a view per task nor the shared one outlives the run.
    let left: Vec<_> = std::fs::read_dir(run.join("tmp"))
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the run's tmp: {left:?}");
}

#[test]
fn a_kept_worktree_runs_nothing_of_the_task_when_the_user_runs_git() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let marker = repo.outside().join("pwned");
    // A failing task (its worktree is kept for inspection) turns its link
    // to the repository into a repository whose configuration runs a
    // command on `git status`.
    let trap = format!(
        "rm -rf .git; mkdir -p .git/objects .git/refs\n\
         echo 'ref: refs/heads/main' > .git/HEAD\n\
         printf '[core]\\n\\tfsmonitor = \"touch {m}\"\\n\\trepositoryformatversion = 0\\n' > .git/config\n\
         echo work > work.txt\nexit 1\n",
        m = marker.display()
    );
    for sandbox in ["landlock", "none"] {
        let name = format!("trap-{sandbox}");
        let plan = repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = {name:?}\nsandbox = {sandbox:?}\n\n[[task]]\nid = \"trap\"\nrun = '''\n{trap}'''\n"
            ),
        );
        repo.run_plan(&plan, &[]).assert_code(1);
        assert_eq!(task(&repo.report(), "trap")["status"], "failed");
        let kept = repo.worktree(&name, "trap");
        let link = kept.join(".git");
        assert!(
            link.symlink_metadata().unwrap().is_file(),
            "{sandbox}: .git is no file"
        );
        let text = std::fs::read_to_string(&link).unwrap();
        assert!(
            text.starts_with("gitdir: ") && text.contains("/.git/worktrees/"),
            "{sandbox}: {text}"
        );
        // The user inspects the kept worktree, as the README suggests.
        let mut git = std::process::Command::new("git");
        hermetic(&mut git, &repo.home());
        let status = git
            .current_dir(&kept)
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        assert!(status.status.success(), "{sandbox}: {status:?}");
        assert!(
            !marker.exists(),
            "{sandbox}: the task's command ran on the host"
        );
        assert_eq!(
            repo.show(&format!("refs/swarm/{name}/trap"), "work.txt"),
            "work"
        );
    }
}

#[test]
fn links_a_task_leaves_in_its_tmp_are_never_followed_by_swarm() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let planted = repo.outside().join("planted");
    // The first attempt leaves links where swarm writes or re-owns files
    // before the next attempt; the retry must find them inert.
    let plan = repo.plan(
        "links.toml",
        &format!(
            "[swarm]\nname = \"links\"\n\n[[task]]\nid = \"t\"\nretries = 1\nrun = '''\n\
             if [ \"$SWARM_ATTEMPT\" = 1 ]; then\n\
             \x20 ln -s {p} \"$HOME/.gitconfig\"\n\
             \x20 ln -s {out} \"$TMPDIR/outside-dir\"\n\
             \x20 exit 1\n\
             fi\n\
             ls -la \"$HOME\" > seen.txt\n'''\n",
            p = planted.display(),
            out = repo.outside().display()
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(0);
    assert!(!planted.exists(), "swarm followed a task's link");
    let outside = repo.outside().symlink_metadata().unwrap();
    assert_eq!(outside.uid(), nix::unistd::geteuid().as_raw());
}
