#!/usr/bin/env bash
# Section 27 of BENCHMARKS.md: a crate-wide rename with a run-wide verify
# (regex-automata from the machine's cargo registry, made a git
# repository): `StateID` and `PatternID` renamed in every file that names
# them, split among 11 tasks, merged, and the integration branch checked
# with `cargo check` once at the end, through swarm (sandboxed, the
# defaults) and by a script a person would write (a worktree per part,
# the parts merged, `cargo check` in the checkout they keep).
#
#   bench/refactor.sh          # writes section 27 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/refactor.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): regex-syntax (no
# dependencies) and `Span` renamed in 2 tasks, to check that the script
# still runs; tests/e2e/bench_scripts.rs does so in CI. With SWARM nothing
# is built; OUT defaults to a temporary file. A command that fails ends
# the script with a message naming it.
#
# "Second run" is what a person doing refactors does every day: the same
# job again from the same base, its checkout and build output kept (by
# hand: the checkout where they ran `cargo check` last; swarm: the
# verify's kept checkout and the cache it built on the base). Needs the
# crate and its dependencies in the registry (`cargo fetch` in this
# workspace puts them there).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
machines_cargo

cd "$ROOT"
ensure_swarm
if [ "$SMOKE" = 1 ]; then
  CRATE=regex-syntax PARTS=2 WORDS=(Span)
else
  CRATE=regex-automata PARTS=11 WORDS=(StateID PatternID)
fi
SRC=$(ls -d "$CARGO_HOME"/registry/src/*/"$CRATE"-0.* 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$SRC" ]; then
  echo "$CRATE is not in $CARGO_HOME/registry: run \`cargo fetch\` in $ROOT" >&2
  exit 1
fi
VERSION=${SRC##*/"$CRATE"-}

# On disk, not tmpfs: build output is what a real run writes.
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-refactor-bench.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
hermetic_git "$WORK"
REPO=$WORK/$CRATE
cp -r "$SRC" "$REPO"
cd "$REPO"
printf 'target/\n' > .gitignore
# Tasks and verifies have no network: dependencies are fetched once.
cargo fetch -q
git init -q -b main && git add -A && git commit -q -m "$CRATE $VERSION"

# The rename: each word to its CamelCase (`StateID` -> `StateId`) in every
# file that names it, the files dealt out to the parts in turn.
SED=""
for w in "${WORDS[@]}"; do SED="${SED}s/\\b$w\\b/${w%ID}Id${w#*ID}/g; "; done
[ "$SMOKE" = 1 ] && SED="s/\\bSpan\\b/SrcSpan/g; "
mapfile -t FILES < <(grep -rlw -e "${WORDS[0]}" ${WORDS[1]:+-e "${WORDS[1]}"} src | sort)
NFILES=${#FILES[@]}
part_files() { # part_files N: the files of part N (from 1)
  local i
  for ((i = $1 - 1; i < NFILES; i += PARTS)); do printf '%s\n' "${FILES[$i]}"; done
}

VERIFY="cargo check --offline --quiet"
{
  printf '[swarm]\nname = "rename"\nconcurrency = %s\nverify = "%s"\nverify_every = "end"\n\n' "$NPROC" "$VERIFY"
  for ((n = 1; n <= PARTS; n++)); do
    mapfile -t mine < <(part_files "$n")
    printf "[[task]]\nid = \"part%s\"\npaths = [%s]\nrun = '''sed -i -E '%s' %s'''\n\n" \
      "$n" "$(printf '"%s", ' "${mine[@]}" | sed 's/, $//')" "$SED" "${mine[*]}"
  done
} > "$WORK/rename.toml"
plan_clean "$REPO" "$WORK/rename.toml"

swarm_run() { # swarm_run RUN: seconds
  local t; t=$(now_s)
  run_logged "$WORK/$1.log" "$SWARM" run -q --name "$1" "$WORK/rename.toml"
  elapsed "$t"
}
base_done() { stat -c %y "$(find "$WORK/home" -path '*/.cache/@verify-base/.done' | head -1)"; }
# Second runs: RUNS of them (the median taken), each a new run.
RUNS=${RUNS:-$(sized 3 1)}
s_first=$(swarm_run r1)
built_first=$(base_done)
s_second=$(for ((r = 2; r <= RUNS + 1; r++)); do swarm_run "r$r"; echo; done | median_of)
# The verify passed on the whole rename, and the second run's check was
# incremental: it started from the base's build, at the first run's path.
for run in r1 "r$((RUNS + 1))"; do
  if git grep -qw "${WORDS[0]}" "swarm/$run" -- src; then
    echo "refactor.sh: run $run left ${WORDS[0]} in its branch" >&2
    exit 1
  fi
done
if [ "$(base_done)" != "$built_first" ]; then
  echo "refactor.sh: the second run built the verify's base cache again" >&2
  exit 1
fi
base_cache=$(find "$WORK" -type d -name @verify-base -path '*/.cache/*' | head -1)
disk_base=$(du -sm "$base_cache" | cut -f1)
echo "swarm: $s_first s, $s_second s"

# By hand: a worktree per part (made, edited, committed, $NPROC at a time,
# then removed), the parts merged into a branch in the checkout the person
# keeps, `cargo check` there. The first round at a new checkout (nothing
# built), the second in the same one, its target/ as the first left it.
hand_round() { # hand_round ROUND
  local dir=$WORK/hand/$1
  rm -rf "$WORK/parts"
  mkdir -p "$WORK/parts"
  for ((n = 1; n <= PARTS; n++)); do git worktree add -q -b "hand$1-$n" "$WORK/parts/p$n" main; done
  for ((n = 1; n <= PARTS; n++)); do printf '%s\n' "$n"; done | xargs -P "$NPROC" -I{} sh -c '
    cd "$0/parts/p{}" && sed -i -E "$1" $(cat "$0/parts.{}") && git commit -qam "part {}"
  ' "$WORK" "$SED"
  [ -d "$WORK/keep" ] || git worktree add -q --detach "$WORK/keep" main
  cd "$WORK/keep"
  git checkout -q --detach main
  for ((n = 1; n <= PARTS; n++)); do git merge -q --no-edit "hand$1-$n"; done
  $VERIFY
  for ((n = 1; n <= PARTS; n++)); do git worktree remove --force "$WORK/parts/p$n"; done
}
for ((n = 1; n <= PARTS; n++)); do part_files "$n" > "$WORK/parts.$n"; done
by_hand() { # by_hand ROUND: seconds
  local t; t=$(now_s)
  run_logged "$WORK/hand$1.log" hand_round "$1"
  elapsed "$t"
}
h_first=$(by_hand 1)
# Before the second round the person's checkout is built on the base (as
# swarm's base cache is): they checked main there. Not timed. Then the
# round's tip is as new to their build as to swarm's verify.
built_on_base() { cd "$WORK/keep" && git checkout -q --detach main && $VERIFY; }
h_second=$(for ((r = 2; r <= RUNS + 1; r++)); do
  run_logged "$WORK/hand-base$r.log" built_on_base
  by_hand "$r"
  echo
done | median_of)
echo "by hand: $h_first s, $h_second s"
vs_first=$(ratio "$s_first" "$h_first")
vs_second=$(ratio "$s_second" "$h_second")

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): $CRATE, $PARTS tasks; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 27. A crate-wide rename with a run-wide verify ($CRATE $VERSION)

${SMOKE_NOTE}Measured by \`bench/refactor.sh\` on $(date -u +%Y-%m-%d) at $(git -C "$ROOT" rev-parse --short HEAD), on disk, $NPROC cores: the crate
from the cargo registry made a git repository; ${WORDS[*]} renamed in the $NFILES files that name
them, split among $PARTS tasks ($NPROC at a time, sandboxed), merged in order, and the
integration branch checked once at the end (\`verify = "$VERIFY"\`,
\`verify_every = "end"\`). By hand: a \`git worktree\` per part (edited and committed,
$NPROC at a time), the parts merged in the checkout the person keeps, the same
\`cargo check\` there. "Second run" is the same job again from the same base, with the
base already built: by hand in the same checkout, checked on the base first (not timed),
as a person who checks main before a refactor; through swarm a new run, whose verify
finds the base cache the first run built.

| $PARTS tasks, $NFILES files | first run | second run (median of $RUNS) |
|---|---:|---:|
| **swarm** | **$s_first s** | **$s_second s** |
| by hand: worktrees, merges, \`cargo check\` in a kept checkout | $h_first s | $h_second s |
| swarm / by hand | ${vs_first}x | ${vs_second}x |

The verify's checkout is kept between runs at one path (\`<home>/.warm/@verify\`) and
moved from commit to commit by git, which leaves unchanged files' times alone; its build
cache starts from a copy of one the verify built on the run's base (in the first run,
beside the tasks; the second run finds it built for the same base and builds nothing
there): so the second run's check rebuilds only this crate, as the person's does. The
first run pays for the base's build once (it is what makes every later run incremental);
the base cache took $disk_base MB.
EOF
)
python3 - "$OUT" "$section" <<'PY'
import os, re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else ""
text = re.sub(r"\n## 27\. .*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n")
open(path, "w").write(text + "\n\n" + section + "\n")
PY
echo "wrote section 27 of $OUT"
