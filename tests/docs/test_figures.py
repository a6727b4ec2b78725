"""Every figure in README.md and docs/*.md that cites a committed result file is in that file.

The rule. Each document is cut into units: a paragraph (lines between blank lines; a heading is a unit of its
own) or one Markdown table row; fenced code blocks are skipped. A unit cites a result when it names a file of
benchmarks/results/ by its name, `<name>-<date>[-suffix].md` or `.json` (with or without a path before it).
For every unit that cites one:

- every cited file must be committed (tracked by git) in benchmarks/results/;
- every figure of the unit must appear in the text of the cited files, each read with its sibling (the `.md`
  and the `.json` of the same name). A figure is a number written with a decimal point or a thousands
  separator, or an integer of 10 or more, also before `%` or `x` (a ratio such as 4.67x). It matches a number
  of those files of the same value: verbatim, without its thousands separators (13,041 and 13041), with
  trailing zeros (75 and 75.0), or rounded from a more precise number to the figure's own decimals (108.9
  from 108.93, 617 from 617.2; half up or half even). 13,000 does not match 13,041: that is another value.

Not figures: dates (2026-12-07), version numbers (3.5.0), the cited file names, anything inside backticks
(code, commands, settings), link targets and URLs, reference numbers in brackets ([14, 15]), and digits glued
to a word other than a ratio's x: identifiers (m6gd, SCD2, SHA-256) and sizes written with a scale suffix
(1M, 100M, 1B, 100k), which name the size of a run or of a what-if, not a result.

A figure that is not read off a result file is marked where it stands, in words a reader understands:

- `~`, `≈` or `about` right before it: an estimate or a rounding ("~8 min", "≈ 26 core-minutes",
  "about 1 min");
- a parenthesis right after it (after its unit, at most three words) that starts with `derived:` and says how
  it was computed, e.g. "6,500 rows/s per core (derived: 13,041 / 2 cores)". The parenthesis is the
  derivation, not a claim of its own: the figures inside it are not checked.

A unit that says "no result file was committed" reports a measurement with no committed result; its figures
are not checked (the files it cites must still exist).

Limits: a unit is matched against the set of numbers of its files, not against what the numbers mean, so a
wrong figure that happens to equal another number of the cited files passes, and so does arithmetic inside a
`derived:` parenthesis. Figures in units that cite no result file are not checked at all (`python -m
tests.docs.test_figures` counts them), nor are figures in other files (benchmarks/README.md, the notebooks).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

RESULTS_DIR = "benchmarks/results"
NO_RESULT = "no result file was committed"

CITATION = re.compile(r"[a-z0-9-]+-\d{4}-\d{2}-\d{2}[a-z0-9-]*\.(?:md|json)")
FENCE = re.compile(r"^\s*(```|~~~)")
# spans whose digits are not figures: masked with spaces so that offsets stay put
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
URL = re.compile(r"https?://\S+")
REFERENCE = re.compile(r"\[\d+(?:,\s*\d+)*\](?!\()")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
VERSION = re.compile(r"(?<![\w.])\d+(?:\.\d+){2,}(?![\w.]*\d)")
# a parenthesis of one level of nesting that starts with "derived:"; its content is masked, its start kept
DERIVED = re.compile(r"\(derived:((?:[^()]|\([^()]*\))*)\)")
NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)"
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"x?(?![\w]|[.,]\d)")
ESTIMATE_BEFORE = re.compile(r"(?:~|≈|\babout)\s*[$*]*\s*$", re.IGNORECASE)
DERIVED_AFTER = re.compile(r"[^\s\d(;,|]*(?:\s+[^\s\d(;,|]+){0,3}?\s*\(derived:")
# numbers in the result files: thousands separators, decimals, exponents (JSON floats)
FILE_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclasses.dataclass(frozen=True)
class Unit:
    line: int  # 1-based, of the unit's first line
    text: str


@dataclasses.dataclass(frozen=True)
class Figure:
    text: str  # as written, without a ratio's x
    start: int  # offset in the unit
    marked: bool  # an estimate or derived figure, marked as such


@dataclasses.dataclass(frozen=True)
class Problem:
    doc: str
    line: int
    excerpt: str
    figure: str | None  # None: a cited file that is not committed
    cited: tuple[str, ...]

    def __str__(self):
        what = (f"figure {self.figure!r} is not in the cited files" if self.figure is not None
                else "cites files not committed in benchmarks/results/")
        return f"{self.doc}:{self.line}: {what}: {', '.join(self.cited)}\n    ...{self.excerpt}..."


def units(text: str) -> list[Unit]:
    """Paragraphs (a heading alone), and table rows one by one; code fences skipped."""
    out: list[Unit] = []
    para: list[str] = []
    start = 0
    in_fence = False

    def flush():
        if para:
            out.append(Unit(start, "\n".join(para)))
            para.clear()

    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("|") or stripped.startswith("#"):
            flush()
            out.append(Unit(number, stripped))
        else:
            if not para:
                start = number
            para.append(line)
    flush()
    return out


def citations(unit_text: str) -> list[str]:
    return list(dict.fromkeys(CITATION.findall(unit_text)))


def _mask(text: str, pattern: re.Pattern, group: int = 0) -> str:
    return pattern.sub(lambda m: m.string[m.start():m.start(group)] + " " * len(m.group(group))
                       + m.string[m.end(group):m.end()], text)


def figures(unit_text: str) -> list[Figure]:
    masked = unit_text
    for pattern in (CODE_SPAN, LINK_TARGET, URL, REFERENCE, CITATION, DATE, VERSION):
        masked = _mask(masked, pattern)
    masked = _mask(masked, DERIVED, 1)
    found = []
    for m in NUMBER.finditer(masked):
        number = m.group(1)
        if "," not in number and "." not in number and int(number) < 10:
            continue
        marked = bool(ESTIMATE_BEFORE.search(masked, 0, m.start())
                      or DERIVED_AFTER.match(masked, m.end()))
        found.append(Figure(number, m.start(), marked))
    return found


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def numbers_of(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in FILE_NUMBER.finditer(text)}


def matches(figure: str, numbers: set[str]) -> bool:
    """The figure's value is one of the numbers, as written or rounded from a more precise one."""
    value = Decimal(figure.replace(",", ""))
    places = _decimals(figure)
    quantum = Decimal(1).scaleb(-places)
    for number in numbers:
        try:
            candidate = Decimal(number)
        except ArithmeticError:
            continue
        if candidate == value:
            return True
        if -candidate.as_tuple().exponent > places and any(
                candidate.quantize(quantum, rounding=r) == value for r in (ROUND_HALF_UP, ROUND_HALF_EVEN)):
            return True
    return False


def siblings(name: str) -> list[str]:
    stem = name.rsplit(".", 1)[0]
    return [stem + ".md", stem + ".json"]


def check(text: str, doc: str, results: dict[str, str]) -> tuple[list[Problem], int, int]:
    """Problems of one document, the number of units citing a result and of figures checked in them.

    `results` maps each committed result file's name to its text."""
    problems: list[Problem] = []
    citing = checked = 0
    for unit in units(text):
        cited = citations(unit.text)
        if not cited:
            continue
        citing += 1
        flat = " ".join(unit.text.split())
        missing = [name for name in cited if name not in results]
        if missing:
            problems.append(Problem(doc, unit.line, flat[:100], None, tuple(missing)))
        if NO_RESULT in flat:
            continue
        numbers: set[str] = set()
        for name in cited:
            for file in siblings(name):
                numbers |= numbers_of(results.get(file, ""))
        for figure in figures(unit.text):
            if figure.marked:
                continue
            checked += 1
            if not matches(figure.text, numbers):
                around = " ".join(unit.text[max(0, figure.start - 60):figure.start + 40].split())
                problems.append(Problem(doc, unit.line, around, figure.text, tuple(cited)))
    return problems, citing, checked


def committed_results(root: Path = REPO_ROOT) -> dict[str, str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--", RESULTS_DIR], cwd=root, capture_output=True,
                            text=True, check=True).stdout.split("\0")
    return {Path(p).name: (root / p).read_text() for p in listed if p and (root / p).is_file()}


def documents(root: Path = REPO_ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def check_all(root: Path = REPO_ROOT) -> tuple[list[Problem], int, int]:
    results = committed_results(root)
    problems: list[Problem] = []
    citing = checked = 0
    for path in documents(root):
        found, c, n = check(path.read_text(), str(path.relative_to(root)), results)
        problems += found
        citing += c
        checked += n
    return problems, citing, checked


def test_every_figure_is_in_the_result_file_it_cites():
    problems, citing, checked = check_all()
    assert not problems, f"{len(problems)} figure(s) not in their result files:\n" + "\n".join(map(str, problems))
    # the scan itself works: the docs cite results in dozens of units (a broken regex would check nothing)
    assert citing >= 20 and checked >= 80, (citing, checked)


FAKE_RESULTS = {
    "demo-2026-01-02.md": "# Demo\n\n| rows | wall s | rows/s |\n|---|---|---|\n| 1,000,000 | 12.5 | 80,000 |\n",
    "demo-2026-01-02.json": '{"rows": 1000000, "wall_s": 12.53, "rows_per_s": 79808.5, "peak_mib": 617.2}',
}

FAKE_DOC = """\
# Demo

The run read 1,000,000 rows in 12.5 s (`demo-2026-01-02.md`): 79,809 rows/s, 12.53 s exact, 617 MiB, at
80000 rows/s in the table; version 3.5.0 on 2026-01-02, `--repeats 33`, [x](https://example.com/44) [21],
at 100M or 100k rows a what-if, 0.39x as fast (derived: 12.53 / 32.1), about 15 min, ≈ 16 s.

The same run took 13.7 s and used 618 MiB (`demo-2026-01-02.md`).

| step | s | source |
|---|---|---|
| load | 12.4 | demo-2026-01-02.json |
| load | ~12 min, 40,000 per core (derived: 80,000 / 2 cores) | demo-2026-01-02.json |
| other | 99.9 | other-2026-01-03.md |

A measurement of 55.5 s (`demo-2026-01-02.md`); no result file was committed for it.

```
not a unit: 77.7 s (demo-2026-01-02.md)
```

Uncited: 88.8 s.
"""


def test_a_wrong_figure_and_a_missing_file_are_reported():
    problems, citing, checked = check(FAKE_DOC, "fake.md", FAKE_RESULTS)
    assert [(p.line, p.figure, p.cited) for p in problems] == [
        (7, "13.7", ("demo-2026-01-02.md",)),
        (7, "618", ("demo-2026-01-02.md",)),
        (11, "12.4", ("demo-2026-01-02.json",)),
        (13, None, ("other-2026-01-03.md",)),
        (13, "99.9", ("other-2026-01-03.md",)),
    ]
    assert "13.7" in str(problems[0]) and "fake.md:7" in str(problems[0])
    assert citing == 6
    # 1,000,000 12.5 79,809 12.53 617 80000 | 13.7 618 | 12.4 | 99.9 (the marked ones skipped)
    assert checked == 10


@pytest.mark.parametrize(("figure", "numbers", "ok"), [
    ("108.9", {"108.93"}, True),
    ("108.9", {"108.85"}, True),  # half up
    ("1.8", {"1.79"}, True),
    ("75.0", {"75"}, True),
    ("13,041", {"13041"}, True),
    ("617", {"617.2"}, True),
    ("13,000", {"13041.2"}, False),
    ("108.9", {"108.8"}, False),
    ("108.90", {"108.9"}, True),
    ("0.17", {"17"}, False),
])
def test_matching_is_generous_with_representations_only(figure, numbers, ok):
    assert matches(figure, numbers) is ok


if __name__ == "__main__":  # the counts: python -m tests.docs.test_figures
    found, citing, checked = check_all()
    uncited = [(path, unit) for path in documents() for unit in units(path.read_text()) if not citations(unit.text)]
    unchecked = [f for _, unit in uncited for f in figures(unit.text) if not f.marked]
    print(f"{citing} units cite a result file, {checked} figures checked in them, {len(found)} problem(s); "
          f"{len(unchecked)} figures in {sum(1 for _, u in uncited if any(not f.marked for f in figures(u.text)))} "
          "units that cite no result file are not checked")
