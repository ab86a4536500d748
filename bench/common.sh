# Helpers every benchmark script sources: hermetic git and timing.

# hermetic_git DIR: HOME in DIR/home, no user or system git configuration,
# a fixed identity.
hermetic_git() {
  export HOME=$1/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
  export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
  export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
  mkdir -p "$HOME"
}

# now_ms: wall-clock milliseconds.
now_ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1000000 }'; }

# median_of: the median of the numbers on stdin.
median_of() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
