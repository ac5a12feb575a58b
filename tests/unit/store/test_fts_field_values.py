"""m007's shortcut for records of one field computes what m006's query does."""

from __future__ import annotations

import json
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.store._schema import FTS_FIELD_VALUES, FTS_FIELD_VALUES_ONE_PAIR

KEYS = st.sampled_from(["cpu", "taskname", "release", "msgid", "hostname", "rack", "SUBSYSTEM"])
PAIRS = st.lists(st.tuples(KEYS, st.text(max_size=12)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(pairs=st.one_of(st.none(), PAIRS))
def test_one_pair_shortcut_equals_the_full_query(pairs: list[tuple[str, str]] | None) -> None:
    fields = None if pairs is None else json.dumps(pairs, ensure_ascii=False)
    conn = sqlite3.connect(":memory:")
    full = FTS_FIELD_VALUES.format(fields="f")
    short = FTS_FIELD_VALUES_ONE_PAIR.format(fields="f")
    got = conn.execute(f"SELECT {full}, {short} FROM (SELECT ? AS f)", (fields,)).fetchone()
    assert got[0] == got[1]
    if pairs is not None and len(pairs) == 1 and pairs[0][0] == "hostname":
        # SQLite's text ends at a NUL (a hostile value may hold one): what FTS indexes
        assert got[1] == pairs[0][1].split("\x00")[0]
