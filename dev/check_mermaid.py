"""Render every Mermaid diagram of README.md and docs/*.md with mermaid-cli, the renderer GitHub's own is
built on, so a diagram that would show GitHub's "Unable to render" box fails here first.

    make docs-check        # = dev/stack.sh run python -m dev.check_mermaid

mermaid-cli comes from the npm registry into .local/mermaid-cli (the make target installs it, with Debian's
chromium); it renders with that chromium headless. Exits 1 naming each diagram that does not parse.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MMDC = ROOT / ".local" / "mermaid-cli" / "node_modules" / ".bin" / "mmdc"
BLOCK = re.compile(r"```mermaid\n(.*?)```", re.S)


def main() -> int:
    if not MMDC.exists():
        raise SystemExit(f"no {MMDC.relative_to(ROOT)}: run `make docs-check`, which installs it")
    failures, count = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "puppeteer.json"
        config.write_text(json.dumps({"executablePath": "/usr/bin/chromium", "args": ["--no-sandbox"]}))
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
            for i, block in enumerate(BLOCK.findall(doc.read_text())):
                count += 1
                source = Path(tmp) / f"{doc.stem}-{i}.mmd"
                source.write_text(block)
                done = subprocess.run([str(MMDC), "-p", str(config), "-i", str(source), "-o", str(source) + ".svg"],
                                      capture_output=True, text=True, timeout=180)
                if done.returncode:
                    error = [line for line in done.stderr.splitlines() if line.strip() and " at " not in line]
                    failures.append(f"{doc.relative_to(ROOT)} diagram {i + 1}: " + " / ".join(error[:4]))
    for failure in failures:
        print(failure)
    print(f"{count - len(failures)} of {count} Mermaid diagrams render")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
