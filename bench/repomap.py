#!/usr/bin/env python3
"""Time to build the repository map the planner shows the model.

Section 11 of BENCHMARKS.md. Makes synthetic repositories of 1,000 and 10,000
files (a Cargo workspace of several crates with path dependencies between
them, an npm workspace of a few packages, nested source directories, docs and
fixtures; files of a few KB; an AGENTS.md; two identifiers of the goal spread
over some of the files), commits them, and times `repomap::build` through the
release example (`orchestrator/examples/repomap.rs`), which builds the map in
process and prints its own elapsed time. Each repository is measured as
committed (loose objects) and after `git gc` (one pack, as most repositories
are).

    bench/repomap.py WORKDIR [BENCHMARKS.md]
        prints "FILES OBJECTS ms unverified_ms goal_less_ms tokens" per
        repository and, given the
        file, writes section 11 into it. REPOMAP_RUNS (default 5) processes per
        measurement, median taken. bench/run.sh calls it at its end.

Needs git and a Rust toolchain (the example is built here, release, unless
BENCH_BIN_DIR names a directory holding it).

    SMOKE=1 BENCH_BIN_DIR=target/debug/examples bench/repomap.py WORKDIR OUT.md
        smoke mode (see bench/common.sh): repositories of 100 and 300 files,
        one process per measurement, no settling; checks that the script
        runs (tests/e2e/bench_scripts.rs does so in CI).

A run of the example that fails ends the script naming the command.
"""

import os
import platform
import random
import subprocess
import sys
import time

from benchmarks_md import replace_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.environ.get("SMOKE", "0") not in ("", "0", "false", "no")
RUNS = int(os.environ.get("REPOMAP_RUNS", "1" if SMOKE else "5"))
SIZES = (100, 300) if SMOKE else (1_000, 10_000)
GOAL = "Make RepoLoader cache what parse_manifest returns"
ENV = dict(
    os.environ,
    GIT_CONFIG_GLOBAL="/dev/null",
    GIT_CONFIG_NOSYSTEM="1",
    GIT_AUTHOR_NAME="bench",
    GIT_AUTHOR_EMAIL="bench@example.com",
    GIT_COMMITTER_NAME="bench",
    GIT_COMMITTER_EMAIL="bench@example.com",
    GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
    GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
)


def sh(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=ENV)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def body(rng, lang, i, target):
    """A source file of 1-6 KB; `target` is an identifier of the goal to
    mention, or None."""
    lines = []
    size = rng.randint(1000, 6000)
    n = 0
    while sum(len(l) + 1 for l in lines) < size:
        n += 1
        if lang == "rs":
            lines.append(f"/// Handles case {n} of item {i}.")
            lines.append(f"pub fn handle_{i}_{n}(input: &str) -> usize {{ input.len() + {n} }}")
        elif lang == "ts":
            lines.append(f"// Handles case {n} of item {i}.")
            lines.append(f"export function handle{i}x{n}(input: string): number {{ return input.length + {n}; }}")
        else:
            lines.append(f"Paragraph {n} of page {i}: how the system handles this case, in words.")
        if target and n == 3:
            lines.append(f"// uses {target} here" if lang != "md" else f"See `{target}`.")
    return "\n".join(lines) + "\n"


def make_repo(path, files):
    """A repository of `files` tracked files (exactly)."""
    rng = random.Random(files)
    os.makedirs(path)
    crates = max(4, files // 500)
    packages = max(2, files // 2000)
    fixed = []  # (path, text) of manifests and other fixed files
    members = [f"crates/c{k:02}" for k in range(crates)]
    ws_deps = "".join(f'c{k:02} = {{ path = "crates/c{k:02}" }}\n' for k in range(crates))
    fixed.append(("Cargo.toml", f'[workspace]\nmembers = ["crates/*"]\nresolver = "3"\n\n[workspace.dependencies]\n{ws_deps}'))
    for k, m in enumerate(members):
        deps = ""
        if k > 0:
            deps += f'c{k - 1:02} = {{ path = "../c{k - 1:02}" }}\n'
        if k > 1:
            deps += "c00.workspace = true\n"
        fixed.append((f"{m}/Cargo.toml", f'[package]\nname = "c{k:02}"\nversion = "0.1.0"\nedition = "2024"\n\n[dependencies]\n{deps}serde = "1"\n'))
    fixed.append(("package.json", '{\n  "name": "bench-web",\n  "private": true,\n  "workspaces": ["web/packages/*"],\n  "scripts": { "test": "vitest", "build": "tsc -b" }\n}\n'))
    for p in range(packages):
        deps = f'"@bench/p{p - 1}": "*", ' if p > 0 else ""
        fixed.append((f"web/packages/p{p}/package.json", f'{{\n  "name": "@bench/p{p}",\n  "version": "1.0.0",\n  "dependencies": {{ {deps}"react": "^18" }}\n}}\n'))
    fixed.append(("AGENTS.md", "# Agents\n\nRun `cargo test` and `npm test` before finishing.\nKeep crates small.\n" * 20))
    fixed.append(("Makefile", "test:\n\tcargo test\n\nbuild:\n\tcargo build\n"))
    fixed.append(("README.md", "# bench\n\nA synthetic repository.\n"))
    for rel, text in fixed:
        write(os.path.join(path, rel), text)
    # The rest: 65% Rust in the crates, 20% TypeScript in the packages, 10%
    # docs, 5% fixtures, in nested directories of 5 to 30 files.
    left = files - len(fixed)
    seen = {"rs": 0, "ts": 0, "md": 0, "json": 0}
    for i in range(left):
        r = i % 20
        kind = "rs" if r < 13 else "ts" if r < 17 else "md" if r < 19 else "json"
        j = seen[kind]
        seen[kind] += 1
        target = "parse_manifest" if i % 23 == 0 else "RepoLoader" if i % 97 == 0 else None
        if kind == "rs":
            rel = f"{members[j % crates]}/src/m{j // crates % 7}/s{j // crates // 7 % 5}/f{i:05}.rs"
        elif kind == "ts":
            rel = f"web/packages/p{j % packages}/src/components/c{j // packages % 9}/f{i:05}.ts"
        elif kind == "md":
            rel = f"docs/section{j % 6}/part{j // 6 % 4}/page{i:05}.md"
        else:
            rel = f"tests/fixtures/set{j % 8}/case{i:05}.json"
        if kind == "json":
            text = '{"case": %d, "values": [%s]}\n' % (i, ", ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(100, 600))))
        else:
            text = body(rng, kind, i, target)
        write(os.path.join(path, rel), text)
    sh("git", "init", "-q", "-b", "main", cwd=path)
    sh("git", "add", "-A", cwd=path)
    sh("git", "commit", "-q", "-m", "init", cwd=path)
    settle()


def settle():
    """Lets the machine finish writing what was just made: right after
    10,000 files are created, maps take three times as long for a few
    seconds. Not in smoke mode: nothing is measured there."""
    if SMOKE:
        return
    os.sync()
    time.sleep(5)


def measure(example, repo, goal=GOAL, *flags):
    """Median ms over RUNS processes, and the map's tokens and files."""
    times, tokens, count = [], None, None
    for _ in range(RUNS):
        cmd = [example, repo, goal, *flags]
        run = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        if run.returncode != 0:
            sys.exit(f"repomap.py: `{' '.join(cmd)}` failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
        out = run.stdout
        fields = dict(f.split("=", 1) for f in out.split())
        times.append(float(fields["ms"]))
        tokens, count = int(fields["tokens"]), int(fields["files"])
    times.sort()
    return times[len(times) // 2], tokens, count


SECTION = """## 11. Repository map for the planner

{smoke}Measured on {date}, {machine}, by
`python3 bench/repomap.py WORKDIR BENCHMARKS.md` (WORKDIR on {fs}; `bench/run.sh` calls
it so). Timed: `repomap::build`, what `swarm plan` shows the model before it splits a
goal (packages and their dependencies, AGENTS.md, test and build commands, where the
goal's identifiers occur, the file tree collapsed to the budget), with the default
budget of 8,000 tokens, in process, by `target/release/examples/repomap REPO GOAL`
(`cargo run --release -p swarm --example repomap -- REPO GOAL`); median of {runs}
processes.

Goal: "{goal}". Its identifiers
(`RepoLoader`, `parse_manifest`) make the map read and search every blob; a goal without
identifiers ("{plain_goal}") reads object headers only. Synthetic repositories: a Cargo
workspace ({crates_note}, path and workspace dependencies), an npm
workspace, nested source directories, docs and JSON fixtures, files of 1-6 KB; as
committed (loose objects), then after `git gc` (one pack).

{table}

Target: under 1 s for 10,000 files. Headers are read on one thread (more do not help);
blobs are inflated and searched on every core. "Without hash checks" is the same with
libgit2's check of every object read against its id turned off (`--unverified`, a
process-wide libgit2 option that swarm leaves on): the difference is the SHA-1 of every
blob read.
"""

PLAIN_GOAL = "Tidy up the code"


def main():
    args = sys.argv[1:]
    work = args.pop(0)
    out = args.pop(0) if args else None
    bin_dir = os.environ.get("BENCH_BIN_DIR")
    if not bin_dir:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "swarm", "--example", "repomap"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        bin_dir = os.path.join(target, "release", "examples")
    example = os.path.join(bin_dir, "repomap")
    if not os.access(example, os.X_OK):
        sys.exit(f"repomap.py: {example} is missing (BENCH_BIN_DIR={bin_dir})")
    rows = []
    for files in SIZES:
        repo = os.path.join(work, f"repo{files}")
        make_repo(repo, files)
        for objects in ("loose", "packed"):
            if objects == "packed":
                sh("git", "gc", "-q", cwd=repo)
                settle()
            ms, tokens, count = measure(example, repo)
            unverified, _, _ = measure(example, repo, GOAL, "--unverified")
            no_goal, _, _ = measure(example, repo, PLAIN_GOAL)
            print(files, objects, f"{ms:.1f}", f"{unverified:.1f}", f"{no_goal:.1f}", tokens)
            rows.append((count, objects, ms, unverified, no_goal, tokens))
    if out:
        fs = subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
        write_section(out, rows, fs)


def write_section(out, rows, fs):
    """Writes section 11 into `out` (replacing it): rows of (files, objects,
    ms, unverified ms, goal-less ms, tokens)."""
    table = "\n".join(
        [
            "| files | objects | **map built in** | without hash checks | goal without identifiers | map tokens |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        + [
            f"| {count:,} | {objects} | **{ms:.1f} ms** | {unverified:.1f} ms | {no_goal:.1f} ms | {tokens:,} |"
            for count, objects, ms, unverified, no_goal, tokens in rows
        ]
    )
    section = SECTION.format(
        smoke="**Smoke run (`SMOKE=1`): 100 and 300 files, one process each; these figures measure nothing.**\n\n"
        if SMOKE else "",
        date=time.strftime("%Y-%m-%d", time.gmtime()),
        machine=f"{os.cpu_count()} cores ({platform.machine()})",
        goal=GOAL,
        plain_goal=PLAIN_GOAL,
        runs=RUNS,
        crates_note="4 crates at 1,000 files, 20 at 10,000",
        fs=fs,
        table=table,
    )
    replace_section(out, "11", section)


if __name__ == "__main__":
    main()
