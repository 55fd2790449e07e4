"""FullPosition.record (the per-token trace, with its shortcuts) equals the plain definitions of Position."""

import pytest
import torch

from logitscope.core.processors import Sampler, SamplerConfig
from logitscope.sampling.positions import FullPosition, Position

from tolerances import FLOAT32_TOKEN

CONFIGS = [SamplerConfig.greedy(), SamplerConfig(), SamplerConfig(temperature=0.7, top_p=0.9),
           SamplerConfig(top_k=5), SamplerConfig(min_p=0.2, temperature=1.3)]


def plain_record(position: FullPosition, token: int, k: int) -> tuple:
    return Position.record(position, token, k)  # the definitions, no shortcut


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: repr(c)[:60])
@pytest.mark.parametrize("masked", [False, True], ids=["finite", "with -inf logits"])
def test_record_equals_the_plain_definitions(config, masked):
    gen = torch.Generator().manual_seed(7)
    raw = torch.randn(500, generator=gen) * 3
    if masked:
        raw[::7] = float("-inf")  # tokens a model can never produce
    sampler = Sampler(config, seed=1)
    processed = sampler.process(torch.tensor([[1, 2, 3]]), raw[None])[0]
    position = FullPosition(raw, processed)
    token = int(sampler.choose(processed[None])[0, 0])
    for t in (token, int(raw.topk(3).indices[-1]), int(raw.argmin() if not masked else 1)):  # top, inside, deep
        got, want = position.record(t, 4), plain_record(FullPosition(raw, processed), t, 4)
        assert got[0] == want[0] and int(got[3]) == int(want[3]) and int(got[5]) == int(want[5])
        for a, b in ((got[1], want[1]), (got[2], want[2]), (got[4], want[4])):
            assert float(a) == FLOAT32_TOKEN.approx(float(b)) or (a == b)  # -inf for a removed token
        assert got[6].tolist() == want[6].tolist()
        torch.testing.assert_close(got[7].double(), want[7].double(), atol=1e-5, rtol=0)
