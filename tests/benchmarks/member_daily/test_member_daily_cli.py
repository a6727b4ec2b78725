"""The daily benchmark's arguments and summary, without services (the whole run: test_member_daily_smoke.py)."""

import pytest

from benchmarks.member_daily import cli, summary


@pytest.mark.parametrize("argv", [["--members", "0"], ["--repeats", "0"], ["--render", "/nonexistent/x.json"],
                                  ["--render", "/tmp"], ["--render", __file__],
                                  ["--render", __file__, "--out", "-"]])
def test_bad_arguments_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_an_unusable_results_directory_is_refused_before_any_load(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["--quick", "--out", str(a_file / "sub")])
    assert exc.value.code == 2
    assert "--out: cannot use" in capsys.readouterr().err


def test_what_limits_it_comes_from_the_run_of_median_wall_time():
    # in execution order: the middle one by order (5.0 s) is not the run of median wall time (7.0 s)
    runs = [{"ok": True, "rows": 10, "contender": "dlt", "step": "first", "wall_s": wall, "limit": f"run of {wall}"}
            for wall in (9.0, 8.0, 5.0, 1.0, 7.0)]
    first = summary.summarize(runs)["10"]["dlt"]["first"]
    assert first["wall_s"]["median"] == 7.0
    assert first["limit"] == "run of 7.0"


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "cannot read .* as JSON"), ("{}", "is not a result of this benchmark"), ("[]", "is not a result"),
    ('{"benchmark": "member_history"}', "is not a result of this benchmark"),
])
def test_render_of_something_else_says_so_and_writes_nothing(tmp_path, content, message):
    result = tmp_path / "result.json"
    result.write_text(content)
    with pytest.raises(SystemExit, match=message):
        cli.main(["--render", str(result)])
    assert not result.with_suffix(".md").exists()
