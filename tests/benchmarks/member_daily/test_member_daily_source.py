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
