"""README.md's reading path promises a reviewer's core read of at most 15 minutes: each core document's word
count as stated there must be its count now (within 5%, as `wc -w` counts: whitespace-separated words), up to
the heading the row names when it names one, and the stated total must fit 15 minutes at 230 words a minute."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

README = REPO_ROOT / "README.md"
WORDS_A_MINUTE = 230
ROW = re.compile(r'^\| (?:this README|\[[^\]]+\]\((?P<path>[^)]+)\)(?:, up to "(?P<heading>[^"]+)")?) '
                 r'\| (?P<words>[\d,]+) \|')


def words(path, heading: str | None = None) -> int:
    text = path.read_text()
    if heading:
        match = re.search(rf"^#+ .*{re.escape(heading)}", text, flags=re.M)
        assert match, f"{path.name} has no heading {heading!r}"
        text = text[:match.start()]
    return len(text.split())


def core_rows() -> list[tuple]:
    section = README.read_text().split("## Reading path", 1)[1].split("\n## ", 1)[0]
    rows = [(REPO_ROOT / m["path"] if m["path"] else README, m["heading"], int(m["words"].replace(",", "")))
            for line in section.splitlines() if (m := ROW.match(line))]
    total = re.search(r"\| \*\*core\*\* \| \*\*([\d,]+)\*\* \| \*\*~(\d+) minutes\*\* \|", section)
    assert rows and total, "README.md's reading path has no core table"
    return rows, int(total[1].replace(",", "")), int(total[2])


def test_the_core_reading_path_is_what_the_readme_says_and_fits_15_minutes():
    rows, total, minutes = core_rows()
    stale = {f"{path.name} {heading or ''}".strip(): (stated, words(path, heading)) for path, heading, stated in rows
             if abs(words(path, heading) - stated) > 0.05 * stated}
    assert not stale, f"README.md's word counts are stale (stated, now): {stale}"
    assert total == sum(stated for *_, stated in rows)
    assert minutes == round(total / WORDS_A_MINUTE) and total <= 15 * WORDS_A_MINUTE
