"""Writing a section of BENCHMARKS.md, shared by the Python bench scripts.

Each script owns one numbered section (`## N. ...`); running it again
replaces that section (it goes to the end of the file) and leaves every
other section as it was.
"""

import os
import re


def replace_section(out, number, section):
    """Replace section `number` (e.g. "10") of the Markdown file `out`
    (created if missing) with `section`, which starts with its heading."""
    text = open(out).read() if os.path.exists(out) else ""
    pattern = r"\n## " + re.escape(number) + r"\. .*?(?=\n## |\Z)"
    text = re.sub(pattern, "", text, flags=re.S).rstrip("\n")
    with open(out, "w") as f:
        f.write(text + "\n\n" + section)
