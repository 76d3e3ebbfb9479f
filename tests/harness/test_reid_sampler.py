"""The identity-paired ReID sampler: pairing, counts, epoch length, replacement, determinism."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from mv2d_bench.harness.samplers import IdentityPairedSampler


def _ids():
    # identity 10: 6 visible / 3 infrared; 11: 2 / 5; 12: 4 / 4; 13: 1 / 7; 14: 5 / 2;
    # 15: visible only (3), 16: infrared only (2). Interleaved so positions are not contiguous.
    vis = [10, 11, 12, 10, 13, 14, 10, 12, 15, 14, 10, 11, 12, 14, 10, 15, 12, 14, 10, 14, 15]
    ir = [13, 10, 11, 13, 12, 16, 13, 11, 12, 10, 14, 13, 11, 12, 13, 16, 11, 10, 13, 14, 11]
    return vis, ir


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_items_pair_by_identity_and_counts_are_p_times_k():
    vis, ir = _ids()
    s = IdentityPairedSampler(vis, ir, p=3, k=4, epoch="images")
    batches = list(s.batches(_gen(0)))
    # "images" epoch: ceil(max(21, 21) / (3 * 4)) = 2 batches
    assert len(batches) == len(s) == 2
    for b in batches:
        assert b.visible.shape == b.infrared.shape == b.labels.shape == (12,)
        vis_id = torch.tensor(vis)[b.visible]
        ir_id = torch.tensor(ir)[b.infrared]
        assert torch.equal(vis_id, ir_id)  # item j of view 0 and view 1: same identity
        assert torch.equal(vis_id, b.labels)
        assert len(set(b.identities.tolist())) == 3  # distinct identities
        # identity-major order: j = p * K + k
        assert torch.equal(b.labels, b.identities.repeat_interleave(4))
        assert set(b.identities.tolist()) <= {10, 11, 12, 13, 14}


def test_unpaired_identities_are_dropped():
    vis, ir = _ids()
    s = IdentityPairedSampler(vis, ir, p=2, k=2)
    assert s.identities.tolist() == [10, 11, 12, 13, 14]
    assert s.dropped == [15, 16]


def test_without_replacement_when_enough_images_with_replacement_otherwise():
    vis, ir = _ids()
    s = IdentityPairedSampler(vis, ir, p=5, k=4, epoch="identities")
    counts_vis = Counter(vis)
    counts_ir = Counter(ir)
    saw_repeat = False
    for seed in range(5):
        for b in s.batches(_gen(seed)):
            for p, ident in enumerate(b.identities.tolist()):
                for idx, counts in ((b.visible, counts_vis), (b.infrared, counts_ir)):
                    part = idx[p * 4 : (p + 1) * 4].tolist()
                    if counts[ident] >= 4:
                        assert len(set(part)) == 4  # no repeats
                    else:
                        assert len(set(part)) <= counts[ident]
                        saw_repeat = True
    assert saw_repeat


def test_identities_epoch_covers_every_identity_evenly():
    ids = list(range(23))
    vis = [i for i in ids for _ in range(3)]
    ir = [i for i in ids for _ in range(2)]
    s = IdentityPairedSampler(vis, ir, p=4, k=2)  # default epoch: one pass over identities
    assert len(s) == math.ceil(23 / 4) == 6
    seen = Counter()
    for b in s.batches(_gen(3)):
        seen.update(b.identities.tolist())
    assert sum(seen.values()) == 24
    assert set(seen) == set(ids)  # one full permutation plus one from the next
    assert max(seen.values()) - min(seen.values()) <= 1


def test_images_epoch_length():
    vis = [i % 9 for i in range(100)]
    ir = [i % 9 for i in range(37)]
    s = IdentityPairedSampler(vis, ir, p=2, k=3, epoch="images")
    assert len(s) == math.ceil(100 / 6) == 17
    assert len(list(s.batches(_gen(0)))) == 17


def test_deterministic_from_generator_and_seed():
    vis, ir = _ids()
    s = IdentityPairedSampler(vis, ir, p=3, k=4, epoch="images", seed=7)

    def flat(bs):
        return [torch.cat([b.visible, b.infrared]).tolist() for b in bs]

    a = flat(s.batches(_gen(1)))
    assert a == flat(s.batches(_gen(1)))
    assert a != flat(s.batches(_gen(2)))
    s.set_epoch(0)
    e0 = list(s)
    assert e0 == list(s)
    s.set_epoch(1)
    assert list(s) != e0
    assert all(len(batch) == 12 and all(len(pair) == 2 for pair in batch) for batch in e0)


def test_bad_arguments_name_the_problem():
    vis, ir = _ids()
    with pytest.raises(ValueError, match="only 5 have both"):
        IdentityPairedSampler(vis, ir, p=6, k=2)
    with pytest.raises(ValueError, match="epoch must be one of"):
        IdentityPairedSampler(vis, ir, epoch="forever")
    with pytest.raises(ValueError, match="integer identities"):
        IdentityPairedSampler([0.5, 1.5], [0, 1], p=1)
