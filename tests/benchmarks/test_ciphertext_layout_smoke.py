"""The ciphertext-layout benchmark (benchmarks/ciphertext_layout.py) on a few hundred rows: both layouts time
every action and decrypt back to exactly what they encrypted; it never judges which is faster."""

import pytest

from benchmarks import ciphertext_layout

pytestmark = pytest.mark.unit


def test_both_layouts_round_trip_and_every_action_is_timed(spark):
    measured = ciphertext_layout.measure(spark, rows=300, repeats=1)
    assert measured["mismatches"] == {"six": 0, "one": 0}
    for layout in ciphertext_layout.LAYOUTS:
        assert set(measured["timings"][layout]) == set(ciphertext_layout.ACTIONS)
        assert all(t["wall_s"] > 0 and t["cpu_s"] >= 0 for runs in measured["timings"][layout].values()
                   for t in runs)
        assert measured["stored_bytes"][layout] > 300 * 28, "a GCM ciphertext is at least 28 bytes a row"


def test_a_layout_that_loses_a_value_is_refused(spark, monkeypatch):
    real = ciphertext_layout._layouts

    def lossy(F):  # the one-ciphertext layout forgets the address
        layouts = real(F)
        select, decrypts = layouts["one"]
        kept = [c for c in ciphertext_layout.DIRECT_COLUMNS if c != "address"]
        layouts["one"] = ([ciphertext_layout.pii.encrypt(F.to_json(F.struct(*kept))).alias("pii_enc")], decrypts)
        return layouts

    monkeypatch.setattr(ciphertext_layout, "_layouts", lossy)
    with pytest.raises(AssertionError, match="does not round-trip"):
        ciphertext_layout.measure(spark, rows=50, repeats=1)
