"""Chapter 9's recipes run end to end on a few steps (the shipped runs use the same code)."""
import pytest
import torch

from textbook_lm.data import icl
from textbook_lm.experiments import icl as xicl


def test_a_short_icl_run_records_every_probe():
    model, history, probes = xicl.train_recipe("icl-1layer", steps=60)
    assert history.step[-1] == 60 and len(probes) == len(history.val_step) == 2
    p = probes[-1]
    assert set(p) == {"early_loss", "late_loss", "icl_score", "induction", "induction_head", "prefix_by_head",
                      "previous", "previous_head", "accuracy_8shot"}
    assert p["icl_score"] == pytest.approx(p["late_loss"] - p["early_loss"], abs=2e-4)
    assert 0 <= p["accuracy_8shot"] <= 1 and p["induction_head"][0] == 0        # one layer
    assert model.cfg.n_layer == 1 and model.cfg.vocab_size == len(icl.VOCAB)


def test_chain_models_start_from_the_base_and_leave_it_alone():
    base, _, _ = xicl.train_recipe("icl-1layer", steps=5)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model, history = xicl.train_chains(True, base=base, steps=5)
    assert history.step[-1] == 5 and model is not base
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())
    assert 0 <= xicl.chain_accuracy(model, True, hops=2, n=5) <= 1
    direct, _ = xicl.train_chains(False, base=base, steps=5)
    assert 0 <= xicl.chain_accuracy(direct, False, hops=2, n=5) <= 1


class _Oracle(torch.nn.Module):
    """A 'model' that knows the chains: it puts all probability on the right next token."""

    def __init__(self, steps):
        super().__init__()
        self.steps, self.w = steps, torch.nn.Parameter(torch.zeros(1))
        self.cfg = type("C", (), {"block_size": 200, "vocab_size": len(icl.VOCAB)})()

    def forward(self, idx):
        B, T = idx.shape
        out = torch.full((B, T, len(icl.VOCAB)), -30.0)
        for b in range(B):
            words = icl.decode(idx[b])
            q = words.index("?") if "?" in words else None
            if q is None:
                continue
            arrows = {words[i]: words[i + 1] for i in range(1, q - 3, 3)}
            for t in range(q, T):
                if not self.steps:
                    node = words[q - 1]
                    while arrows[node] != "end":
                        node = arrows[node]
                    nxt = node
                elif t == q:
                    nxt = words[q - 1]
                else:
                    nxt = arrows.get(words[t], ",")
                out[b, t, icl.STOI[nxt]] = 0.0
        return out


@pytest.mark.parametrize("steps", [True, False])
def test_chain_accuracy_is_one_for_a_model_that_knows_the_answer(steps):
    assert xicl.chain_accuracy(_Oracle(steps), steps, hops=3, n=10) == 1.0
