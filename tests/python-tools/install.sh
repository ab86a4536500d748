#!/usr/bin/env bash
# Installs the pinned Python test tools of requirements.txt (real packages
# from PyPI) into a virtual environment at $1 (default:
# target/python-tools), once: the end-to-end tests run pytest as a task's
# command. Safe to run from several tests at once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../../target/python-tools}"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
if cmp -s "$here/requirements.txt" "$dest/requirements.txt" && [ -x "$dest/venv/bin/pytest" ] && [ -s "$dest/junit-10.xsd" ]; then
  exit 0
fi
rm -rf "$dest/venv"
python3 -m venv "$dest/venv"
"$dest/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
# The JUnit schema (Jenkins' junit-10.xsd) from pytest's own sdist, the
# version pinned above.
version="$(sed -n 's/^pytest==//p' "$here/requirements.txt")"
sdist="$(mktemp -d)"
"$dest/venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: "pytest==$version" -d "$sdist" >&2
tar xzf "$sdist/pytest-$version.tar.gz" -C "$sdist" "pytest-$version/testing/example_scripts/junit-10.xsd"
cp "$sdist/pytest-$version/testing/example_scripts/junit-10.xsd" "$dest/junit-10.xsd"
rm -rf "$sdist"
cp "$here/requirements.txt" "$dest/requirements.txt"
