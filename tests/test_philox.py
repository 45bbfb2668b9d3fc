"""The library's raw stream against Random123's known-answer vectors and the counter layout
of docs/stream-spec.md section 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import weightfill as wf

KAT = Path(__file__).parent / "data" / "philox4x32_kat.txt"


def _kat_vectors():
    rows = []
    for line in KAT.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, rounds, *words = line.split()
        assert name == "philox4x32" and rounds == "10"
        ctr, key, expect = words[0:4], words[4:6], words[6:10]
        rows.append(tuple(int(w, 16) for w in ctr + key + expect))
    assert len(rows) >= 3
    return rows


@pytest.mark.parametrize("row", _kat_vectors())
def test_known_answer_vectors(row, each_isa):
    c0, c1, c2, c3, k0, k1, *expect = row
    seed = k0 | (k1 << 32)
    stream = c2 | (c3 << 32)
    block = c0 | (c1 << 32)
    # The block sits at every position of a SIMD batch and in the partial-batch paths.
    for lead in (0, 1, 5, 17, 63):
        if block < lead:
            continue
        words = wf.random_raw(4 * lead + 4, seed=seed, stream=stream, offset=4 * (block - lead))
        assert words[-4:].tolist() == expect


def test_raw_matches_reference_across_batches(each_isa):
    from reference import raw_words

    for seed, stream, offset, n in [(0, 0, 0, 1000), (2**64 - 1, 2**64 - 1, 3, 777),
                                    (123456789, 42, 4 * (2**32 - 5) + 1, 200)]:
        got = wf.random_raw(n, seed=seed, stream=stream, offset=offset)
        np.testing.assert_array_equal(got, raw_words(seed, stream, offset, n))


def test_counter_low_word_carry(each_isa):
    """Blocks 2**32 - 3 .. 2**32 + 2 straddle the carry from c0 into c1."""
    from reference import raw_words

    off = 4 * (2**32 - 3)
    np.testing.assert_array_equal(wf.random_raw(24, seed=9, stream=1, offset=off),
                                  raw_words(9, 1, off, 24))
    # Long enough for the two-batch path, with the wrap at every position of a pair.
    for back in (1, 16, 17, 31, 32, 33, 300):
        off = 4 * (2**32 - back)
        np.testing.assert_array_equal(wf.random_raw(4096, seed=9, stream=1, offset=off),
                                      raw_words(9, 1, off, 4096))


def test_string_stream_is_sha256_prefix():
    import hashlib

    name = "encoder.layer3.weight"
    expect = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    assert wf.stream_id(name) == expect
    np.testing.assert_array_equal(wf.random_raw(8, seed=1, stream=name),
                                  wf.random_raw(8, seed=1, stream=expect))
    assert wf.stream_id("é") != wf.stream_id("e")


def test_raw_offsets_are_views_of_one_sequence():
    whole = wf.random_raw(4096, seed=77, stream=3)
    for off in (0, 1, 2, 3, 4, 63, 64, 65, 1000):
        np.testing.assert_array_equal(wf.random_raw(100, seed=77, stream=3, offset=off),
                                      whole[off:off + 100])
