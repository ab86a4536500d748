"""Writing a section of BENCHMARKS.md, shared by the Python bench scripts.

Each script owns one numbered section (`## N. ...`); running it again
replaces that section (it goes to the end of the file) and leaves every
other section as it was.
"""

import os
import re
import sys


def replace_section(out, number, section):
    """Replace section `number` (e.g. "10") of the Markdown file `out`
    (created if missing) with `section`, which starts with its heading."""
    text = open(out).read() if os.path.exists(out) else ""
    pattern = r"\n## " + re.escape(number) + r"\. .*?(?=\n## |\Z)"
    text = re.sub(pattern, "", text, flags=re.S).rstrip("\n")
    with open(out, "w") as f:
        f.write(text + "\n\n" + section)


def place_section(out, heading, section):
    """Put `section` in the Markdown file `out` (created if missing) where
    the section whose heading starts with `heading` ("## 21. Merge queue")
    stands, else before "Earlier headline figures", else at the end: for
    the shell scripts, whose sections keep their place."""
    try:
        text = open(out).read()
    except FileNotFoundError:
        text = ""
    if re.search(r"^" + re.escape(heading), text, flags=re.M):
        text = re.sub(
            re.escape(heading) + r".*?(?=\n## |\Z)",
            lambda _: section + "\n",
            text,
            flags=re.S,
        )
    elif "\n## Earlier headline figures" in text:
        text = text.replace(
            "\n## Earlier headline figures",
            "\n" + section + "\n\n## Earlier headline figures",
            1,
        )
    else:
        text += "\n" + section + "\n"
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    # bench/benchmarks_md.py place OUT HEADING SECTION
    if len(sys.argv) != 5 or sys.argv[1] != "place":
        sys.exit("usage: benchmarks_md.py place OUT HEADING SECTION")
    place_section(sys.argv[2], sys.argv[3], sys.argv[4])

