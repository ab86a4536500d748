//! Unit tests of snapshots: real repositories, hostile worktrees.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::super::Worktrees;
use super::*;

/// A repository whose first commit holds `files`, and worktrees of it
/// made as a run makes them.
struct Fixture {
    dir: tempfile::TempDir,
    worktrees: Worktrees,
    base: Oid,
}

struct Worktree {
    path: PathBuf,
    admin: PathBuf,
}

impl Fixture {
    /// A repository of `n` files `f/<i>.txt`, each holding `text(i)`.
    fn numbered(n: usize, text: impl Fn(usize) -> String) -> Self {
        let files: Vec<(String, String)> =
            (0..n).map(|i| (format!("f/{i}.txt"), text(i))).collect();
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        Self::new(&files)
    }

    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (repo, base) = super::super::test_repo::with_files(dir.path(), files);
        let worktrees = Worktrees::new(repo);
        Self {
            dir,
            worktrees,
            base,
        }
    }

    fn worktree(&self, name: &str, paths: &[&str]) -> Worktree {
        let path = self.dir.path().join("worktrees").join(name);
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let admin = self.worktrees.create(&path, self.base, &paths).unwrap();
        Worktree { path, admin }
    }

    fn snapshot(&self, wt: &Worktree, scope: &[&str], max_file_size: u64) -> Snapshot {
        let scope: Vec<String> = scope.iter().map(|p| p.to_string()).collect();
        let limits = SnapshotLimits {
            scope: &scope,
            max_file_size,
            run: "r",
        };
        snapshot(&wt.path, &wt.admin, self.base, limits, |skipped, _| {
            format!("test snapshot, {} left out", skipped.len())
        })
        .unwrap()
    }

    /// Every file of `commit`: path to (mode, content).
    fn files(&self, commit: Oid) -> BTreeMap<String, (i32, Vec<u8>)> {
        let repo = Repository::open(self.dir.path().join("repo")).unwrap();
        let tree = repo.find_commit(commit).unwrap().tree().unwrap();
        let mut files = BTreeMap::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let blob = repo.find_blob(entry.id()).unwrap();
                let path = format!("{dir}{}", entry.name().unwrap());
                files.insert(path, (entry.filemode(), blob.content().to_vec()));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        files
    }
}

fn write(wt: &Worktree, rel: &str, content: &[u8]) {
    let abs = wt.path.join(rel);
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    std::fs::write(abs, content).unwrap();
}

fn content(files: &BTreeMap<String, (i32, Vec<u8>)>, path: &str) -> Option<Vec<u8>> {
    files.get(path).map(|(_, c)| c.clone())
}

const MB: u64 = 1 << 20;

#[test]
fn task_written_attributes_and_filters_are_not_applied() {
    let fx = Fixture::new(&[("README", "r\n")]);
    let wt = fx.worktree("attrs", &[]);
    write(
        &wt,
        ".gitattributes",
        b"* text eol=crlf\n* filter=evil ident\n",
    );
    write(&wt, "crlf.txt", b"a\r\nb\r\n");
    write(&wt, "lf.txt", b"a\nb\n");
    write(&wt, "ident.txt", b"$Id: not-a-hash $\n");
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    let files = fx.files(snap.commit);
    assert_eq!(content(&files, "crlf.txt").unwrap(), b"a\r\nb\r\n");
    assert_eq!(content(&files, "lf.txt").unwrap(), b"a\nb\n");
    assert_eq!(
        content(&files, "ident.txt").unwrap(),
        b"$Id: not-a-hash $\n"
    );
    assert!(snap.skipped.is_empty(), "{:?}", snap.skipped);
}

#[test]
fn files_over_the_limit_are_left_out_unread_and_reported() {
    let fx = Fixture::new(&[("grown.bin", "small\n"), ("README", "r\n")]);
    let wt = fx.worktree("big", &[]);
    write(&wt, "big.bin", &[7u8; 2000]);
    write(&wt, "grown.bin", &[8u8; 3000]);
    write(&wt, "fits.bin", &[9u8; 1000]);
    // Sparse: a snapshot that read it would take seconds and gigabytes.
    let sparse = std::fs::File::create(wt.path.join("sparse.bin")).unwrap();
    sparse.set_len(4 << 30).unwrap();
    let snap = fx.snapshot(&wt, &[], 1000);
    let files = fx.files(snap.commit);
    assert_eq!(content(&files, "fits.bin").unwrap(), vec![9u8; 1000]);
    assert!(!files.contains_key("big.bin"));
    assert!(!files.contains_key("sparse.bin"));
    // A tracked file that grew past the limit keeps its base content.
    assert_eq!(content(&files, "grown.bin").unwrap(), b"small\n");
    let too_large = |path: &str, size: u64| SkippedFile {
        path: path.into(),
        reason: SkipReason::TooLarge { size, limit: 1000 },
    };
    assert_eq!(
        snap.skipped,
        [
            too_large("big.bin", 2000),
            too_large("grown.bin", 3000),
            too_large("sparse.bin", 4 << 30)
        ]
    );
    assert_eq!(snap.changed, ["fits.bin"]);
}

#[test]
fn large_files_are_streamed_exactly() {
    let fx = Fixture::new(&[("README", "r\n")]);
    let wt = fx.worktree("stream", &[]);
    let data: Vec<u8> = (0..3 * MB).map(|i| (i * 7 % 251) as u8).collect();
    write(&wt, "data.bin", &data);
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    assert_eq!(content(&fx.files(snap.commit), "data.bin").unwrap(), data);
}

#[test]
fn paths_git_refuses_are_left_out_and_the_rest_is_committed() {
    let fx = Fixture::new(&[("README", "r\n")]);
    let wt = fx.worktree("refused", &[]);
    write(&wt, "GIT~1/config", b"[core]\n");
    write(&wt, ".GIT/config", b"[core]\n");
    write(&wt, "sub/.git/config", b"[core]\n");
    write(&wt, "sub/ok.txt", b"ok\n");
    write(&wt, "other/.git", b"gitdir: /etc\n");
    write(&wt, "work.txt", b"work\n");
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    let files = fx.files(snap.commit);
    assert_eq!(content(&files, "work.txt").unwrap(), b"work\n");
    assert_eq!(content(&files, "sub/ok.txt").unwrap(), b"ok\n");
    let skipped: Vec<&str> = snap.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(skipped, [".GIT", "GIT~1", "other/.git", "sub/.git"]);
    assert!(
        snap.skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::Refused { .. })),
        "{:?}",
        snap.skipped
    );
    assert_eq!(snap.changed, ["sub/ok.txt", "work.txt"]);
}

#[test]
fn gitignore_nested_exclude_and_tracked_but_ignored_files() {
    let fx = Fixture::new(&[
        (".gitignore", "*.log\n"),
        ("keep.log", "old\n"),
        ("sub/.gitignore", "tmp/\n!wanted.log\n"),
    ]);
    std::fs::write(fx.dir.path().join("repo/.git/info/exclude"), "secret.txt\n").unwrap();
    let wt = fx.worktree("ignore", &[]);
    write(&wt, "keep.log", b"new\n");
    write(&wt, "new.log", b"x\n");
    write(&wt, "sub/tmp/x", b"x\n");
    write(&wt, "sub/wanted.log", b"w\n");
    write(&wt, "sub/ok.txt", b"ok\n");
    write(&wt, "secret.txt", b"s\n");
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    assert_eq!(snap.changed, ["keep.log", "sub/ok.txt", "sub/wanted.log"]);
    assert_eq!(
        content(&fx.files(snap.commit), "keep.log").unwrap(),
        b"new\n"
    );
}

#[test]
fn symlinks_are_stored_as_links_never_followed_and_exec_bits_kept() {
    let fx = Fixture::new(&[("docs/guide.txt", "guide\n"), ("README", "r\n")]);
    let outside = fx.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("guide.txt"), "SECRET\n").unwrap();
    let wt = fx.worktree("links", &[]);
    std::os::unix::fs::symlink("/etc/passwd", wt.path.join("link")).unwrap();
    // A tracked directory replaced by a link to a directory outside
    // whose files have the tracked names.
    std::fs::remove_dir_all(wt.path.join("docs")).unwrap();
    std::os::unix::fs::symlink(&outside, wt.path.join("docs")).unwrap();
    write(&wt, "run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(
        wt.path.join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    let files = fx.files(snap.commit);
    assert_eq!(files["link"], (0o120000, b"/etc/passwd".to_vec()));
    assert_eq!(files["docs"].0, 0o120000);
    assert!(!files.contains_key("docs/guide.txt"));
    assert!(files.values().all(|(_, c)| c != b"SECRET\n"));
    assert_eq!(files["run.sh"].0, 0o100755);
    assert_eq!(files["README"].0, 0o100644);
}

#[test]
fn deletions_count_only_within_scope() {
    let fx = Fixture::new(&[
        ("src/a.txt", "a\n"),
        ("src/b.txt", "b\n"),
        ("docs/d.txt", "d\n"),
    ]);
    let narrow = fx.worktree("narrow", &["src"]);
    assert!(!narrow.path.join("docs").exists());
    std::fs::remove_file(narrow.path.join("src/a.txt")).unwrap();
    let snap = fx.snapshot(&narrow, &["src"], 100 * MB);
    let files = fx.files(snap.commit);
    assert_eq!(snap.changed, ["src/a.txt"]);
    assert!(files.contains_key("docs/d.txt"));

    let full = fx.worktree("full", &[]);
    std::fs::remove_dir_all(full.path.join("docs")).unwrap();
    let snap = fx.snapshot(&full, &[], 100 * MB);
    assert_eq!(snap.changed, ["docs/d.txt"]);
}

#[test]
fn files_whose_stat_matches_the_index_are_not_read() {
    let fx = Fixture::numbered(50, |i| format!("{i}\n"));
    let wt = fx.worktree("stat", &[]);
    // Past the clock tick of the checkout, so its entries are not racy
    // once the first snapshot has written the index.
    std::thread::sleep(Duration::from_millis(50));
    write(&wt, "f/1.txt", b"one\n");
    let first = fx.snapshot(&wt, &[], 100 * MB);
    assert_eq!(first.changed, ["f/1.txt"]);
    std::thread::sleep(Duration::from_millis(50));
    // Same size as before: only its times tell.
    write(&wt, "f/2.txt", b"x\n");
    let second = fx.snapshot(&wt, &[], 100 * MB);
    assert_eq!(second.hashed, 1, "unchanged files were read again");
    let files = fx.files(second.commit);
    assert_eq!(content(&files, "f/1.txt").unwrap(), b"one\n");
    assert_eq!(content(&files, "f/2.txt").unwrap(), b"x\n");
}

#[test]
fn special_files_are_reported_and_a_damaged_index_loses_nothing() {
    let fx = Fixture::new(&[("README", "r\n"), ("gone.txt", "g\n")]);
    let wt = fx.worktree("special", &[]);
    nix::unistd::mkfifo(&wt.path.join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::remove_file(wt.path.join("gone.txt")).unwrap();
    write(&wt, "work.txt", b"work\n");
    std::fs::write(wt.admin.join("index"), b"DIRC garbage").unwrap();
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    assert_eq!(snap.changed, ["gone.txt", "work.txt"]);
    assert_eq!(snap.skipped.len(), 1);
    assert_eq!(snap.skipped[0].path, "pipe");
    assert!(matches!(
        &snap.skipped[0].reason,
        SkipReason::Unreadable { message } if message.contains("named pipe")
    ));
}

/// Every object id in the repository's object database, loose or packed
/// (the quarantines of snapshots under way left out: they go with them).
fn all_objects(fx: &Fixture) -> std::collections::HashSet<Oid> {
    let repo = Repository::open(fx.dir.path().join("repo")).unwrap();
    let mut ids = std::collections::HashSet::new();
    repo.odb()
        .unwrap()
        .foreach(|id| {
            ids.insert(*id);
            true
        })
        .unwrap();
    ids
}

/// A file holding the screen's content (copied with a byte added,
/// appended to a tracked file, large, a link's target) is left out of the
/// snapshot and its blob is never written into the repository, whose
/// other changes are committed; a path whose base held it already is not
/// a leak.
#[test]
fn files_holding_screened_content_are_left_out_and_never_written() {
    let secret = b"API_TOKEN=sk-live-0123456789abcdef\nOTHER=1\n";
    let fx = Fixture::new(&[
        ("README", "read me\n"),
        (
            "example.env",
            "API_TOKEN=sk-live-0123456789abcdef\nOTHER=1\n# old\n",
        ),
    ]);
    let screen = crate::git::Screen::new(vec![crate::git::screen::Secret {
        name: ".env".into(),
        id: Oid::hash_object(ObjectType::Blob, secret).unwrap(),
        content: Some(secret.to_vec()),
    }]);
    let wt = fx.worktree("screened", &[]);
    let mut plus = secret.to_vec();
    plus.push(b'!');
    write(&wt, "config.txt", &plus);
    let mut readme = b"read me\n".to_vec();
    readme.extend_from_slice(secret);
    write(&wt, "README", &readme);
    let mut large = vec![b'.'; (SMALL_FILE as usize) * 2];
    large.extend_from_slice(&secret[..secret.len() - 1]);
    write(&wt, "big.log", &large);
    std::os::unix::fs::symlink(
        std::str::from_utf8(&secret[..secret.len() - 1]).unwrap(),
        wt.path.join("link"),
    )
    .unwrap();
    write(
        &wt,
        "example.env",
        b"API_TOKEN=sk-live-0123456789abcdef\nOTHER=1\n# new\n",
    );
    write(&wt, "fine.txt", b"work\n");
    let before = all_objects(&fx);
    let scope: Vec<String> = Vec::new();
    let limits = SnapshotLimits {
        scope: &scope,
        max_file_size: 100 * MB,
        run: "r",
    };
    let (snap, withheld) = snapshot_screened(
        &wt.path,
        &wt.admin,
        fx.base,
        limits,
        Some(&screen),
        |_, _| "m".into(),
    )
    .unwrap();
    let paths: Vec<&str> = withheld.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["README", "big.log", "config.txt", "link"]);
    assert!(withheld.iter().all(|w| w.files == [".env"]));
    let files = fx.files(snap.commit);
    assert_eq!(content(&files, "fine.txt").unwrap(), b"work\n");
    assert!(
        content(&files, "example.env")
            .unwrap()
            .ends_with(b"# new\n")
    );
    // What the task wrote around it is kept, with a word where it was; a
    // large file and a link are left out whole.
    let marker = "[swarm: the content of .env was left out here]";
    assert_eq!(
        content(&files, "README").unwrap(),
        format!("read me\n{marker}\n").as_bytes()
    );
    assert_eq!(
        content(&files, "config.txt").unwrap(),
        format!("{marker}\n!").as_bytes()
    );
    for p in ["big.log", "link"] {
        assert!(!files.contains_key(p), "{p}");
    }
    let cut: Vec<&str> = withheld
        .iter()
        .filter(|w| w.cut.is_some())
        .map(|w| w.path.as_str())
        .collect();
    assert_eq!(cut, ["README", "config.txt"]);
    assert!(
        snap.skipped.iter().any(|s| s.path == "big.log"
            && matches!(&s.reason, SkipReason::Refused { message } if message.contains(".env"))),
        "{:?}",
        snap.skipped
    );
    // Nothing holding the content reached the object database, but for
    // the file whose base held it already.
    let repo = Repository::open(fx.dir.path().join("repo")).unwrap();
    let example = Oid::hash_object(
        ObjectType::Blob,
        b"API_TOKEN=sk-live-0123456789abcdef\nOTHER=1\n# new\n",
    )
    .unwrap();
    for id in all_objects(&fx).difference(&before) {
        let object = repo.find_object(*id, None).unwrap();
        if let Some(blob) = object.as_blob().filter(|_| *id != example) {
            assert!(
                screen.found_in(blob.content()).is_empty(),
                "{id} holds the secret"
            );
        }
    }
}

/// Files whose stat data changed but not their content (as root, a
/// worktree handed to the sandbox's user and back has every file's ctime
/// changed) are read and hashed, and not written again; a file of the
/// same size with other content is.
#[test]
fn files_whose_ctime_alone_changed_are_read_but_not_written_again() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::numbered(20, |i| format!("{i:02}\n"));
    let wt = fx.worktree("ctime", &[]);
    std::thread::sleep(Duration::from_millis(50));
    // The same mode set again: only each file's ctime moves.
    for i in 0..20 {
        let file = wt.path.join(format!("f/{i}.txt"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    write(&wt, "f/3.txt", b"xx\n");
    let snap = fx.snapshot(&wt, &[], 100 * MB);
    assert_eq!(snap.changed, ["f/3.txt"]);
    assert_eq!((snap.hashed, snap.written), (20, 1));
    let files = fx.files(snap.commit);
    assert_eq!(content(&files, "f/3.txt").unwrap(), b"xx\n");
    assert_eq!(content(&files, "f/4.txt").unwrap(), b"04\n");
}

/// A state (setup's outputs, a scorer's copy) writes nothing into the
/// repository's objects, and says what each changed path holds.
#[test]
fn a_state_writes_no_object_into_the_repository() {
    let fx = Fixture::new(&[("README", "r\n")]);
    let wt = fx.worktree("state", &[]);
    write(&wt, "made.txt", b"made by setup\n");
    std::fs::remove_file(wt.path.join("README")).unwrap();
    let before = all_objects(&fx);
    let scope: Vec<String> = Vec::new();
    let limits = SnapshotLimits {
        scope: &scope,
        max_file_size: 100 * MB,
        run: "r",
    };
    let into = fx.dir.path().join("copy");
    std::fs::create_dir(&into).unwrap();
    let made = state_into(&wt.path, &wt.admin, fx.base, limits, &into).unwrap();
    assert_eq!(made.changed, ["README", "made.txt"]);
    let id = Oid::hash_object(ObjectType::Blob, b"made by setup\n").unwrap();
    assert!(made.made("made.txt", id));
    assert!(made.entries[0].is_none());
    assert_eq!(
        std::fs::read(into.join("made.txt")).unwrap(),
        b"made by setup\n"
    );
    assert_eq!(all_objects(&fx), before);
}
