"""The state file: round trip, reboot detection, atomic replacement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netconsole.forward.state import (
    MAX_PSTORE_DIGESTS,
    ForwardState,
    StateError,
    decode_state,
    encode_state,
    load_state,
    read_boot_id,
    save_state,
)

BOOT_A = "7cc264b7-b376-458b-802f-125566df76e3"
BOOT_B = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_state_round_trip(tmp_path: Path) -> None:
    st = ForwardState(boot_id=BOOT_A, seq=344, pstore_sent=("ab" * 32,))
    save_state(tmp_path / "s" / "forward.state", st)
    assert load_state(tmp_path / "s" / "forward.state") == st
    assert decode_state(encode_state(st)) == st


def test_state_missing_file_is_empty(tmp_path: Path) -> None:
    st = load_state(tmp_path / "nope")
    assert st == ForwardState()
    assert st.resume_after(BOOT_A) is None


def test_state_resume_after_same_boot_skips_what_was_sent() -> None:
    assert ForwardState(boot_id=BOOT_A, seq=344).resume_after(BOOT_A) == 344


def test_state_reboot_starts_from_the_beginning() -> None:
    st = ForwardState(boot_id=BOOT_A, seq=344, pstore_sent=("d1",))
    assert st.resume_after(BOOT_B) is None
    new = st.advanced(boot_id=BOOT_B, seq=None)
    assert (new.boot_id, new.seq, new.pstore_sent) == (BOOT_B, None, ("d1",))


def test_state_advanced_keeps_seq_when_nothing_new() -> None:
    st = ForwardState(boot_id=BOOT_A, seq=10)
    assert st.advanced(boot_id=BOOT_A, seq=None) is st
    assert st.advanced(boot_id=BOOT_A, seq=12).seq == 12


def test_state_pstore_digests_are_bounded_and_unique() -> None:
    st = ForwardState()
    for i in range(MAX_PSTORE_DIGESTS + 5):
        st = st.with_pstore(f"d{i}")
    assert st.with_pstore(f"d{MAX_PSTORE_DIGESTS + 4}") is st
    assert len(st.pstore_sent) == MAX_PSTORE_DIGESTS
    assert st.pstore_sent[-1] == f"d{MAX_PSTORE_DIGESTS + 4}"


def test_save_state_replaces_atomically_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "forward.state"
    save_state(path, ForwardState(boot_id=BOOT_A, seq=1))
    inode = os.stat(path).st_ino
    save_state(path, ForwardState(boot_id=BOOT_A, seq=2))
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert load_state(path).seq == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forward.state"]


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"version": 2}',
                                  b'{"version": 1, "seq": -1}',
                                  b'{"version": 1, "boot_id": 5}',
                                  b'{"version": 1, "pstore_sent": [1]}'])
def test_load_state_refuses_a_foreign_file(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "f").write_bytes(data)
    with pytest.raises(StateError):
        load_state(tmp_path / "f")


def test_read_boot_id_strips(tmp_path: Path) -> None:
    (tmp_path / "boot_id").write_text(BOOT_A + "\n")
    assert read_boot_id(tmp_path / "boot_id") == BOOT_A
