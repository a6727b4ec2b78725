"""State B of the daily benchmark's source is derived column by column by name, without services."""

from benchmarks.member_daily.source import CHANGED_VALUES, state_b_select
from lakehouse_jobs.contracts import MEMBER


def select_items(sql: str) -> list[str]:
    """The SELECT list's items, split at the commas outside parentheses."""
    items, depth, current = [], 0, ""
    for ch in sql.removeprefix("SELECT ").split(" FROM ")[0]:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    return [*items, current.strip()]


def test_state_b_selects_every_contract_column_by_name_in_order_changing_only_email_and_address():
    sql = state_b_select("store.m10_changes", "live.member")
    items = select_items(sql)
    # each item yields its column under its own name: "a.<name>", or "IF(...) AS <name>" for a changed one
    assert [item.rsplit(" AS ", 1)[-1].removeprefix("a.") for item in items] == MEMBER.column_names
    changed = {item.rsplit(" AS ", 1)[1] for item in items if " AS " in item}
    assert changed == set(CHANGED_VALUES) == {"email", "address"}
    assert sql.endswith("FROM live.member a LEFT JOIN store.m10_changes c USING (member_id)")


class _Comments:
    """A cursor stand-in answering the information_schema query of Source._comment from a dict."""

    def __init__(self, comments: dict[tuple[str, str], str]):
        self.comments, self.row = comments, None

    def execute(self, sql, params):
        self.row = (self.comments[params],) if params in self.comments else None

    def fetchone(self):
        return self.row


def test_a_state_seeded_by_an_older_generator_is_recognised_but_not_reused():
    from benchmarks.member_daily.source import Source
    from dev.seed_members import GENERATOR_VERSION

    source = Source(42)
    current = source.tag(10, "A")
    assert current.endswith(f" generator={GENERATOR_VERSION}")
    old = current.rsplit(" generator=", 1)[0]  # the tag before generator versions
    for comment in (old, current):
        cur = _Comments({("bench_daily", "member"): comment})
        assert source.live(cur) == (10, "A")  # ours, so parked and reseeded, never refused
        assert source._have(cur, 10, "A") is (comment == current)
    try:
        source.live(_Comments({("bench_daily", "member"): "someone else's table"}))
    except RuntimeError as exc:
        assert "is not a table of this benchmark" in str(exc)
    else:
        raise AssertionError("a table of someone else's was taken for ours")
