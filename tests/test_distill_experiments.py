"""Chapter 11's experiments: layer choice, compression helpers (quantisation within a stated
tolerance, pruning's sparsity, sizes and speeds), and the students' training loop."""
import pytest
import torch

from textbook_lm.experiments import distill as ex
from textbook_lm.gpt import GPT, GPTConfig


def _gpt(n_layer=2, width=32, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=n_layer, n_head=2, n_embd=width)).eval()


def test_teacher_layers_are_evenly_spaced_from_the_first():
    assert ex.teacher_layers(6, 3) == [0, 2, 4]          # every other one, as DistilBERT
    assert ex.teacher_layers(6, 2) == [0, 3]
    assert ex.teacher_layers(6, 1) == [0]
    assert ex.teacher_layers(12, 6) == [0, 2, 4, 6, 8, 10]


def test_int8_quantisation_keeps_the_outputs_within_tolerance_and_shrinks_the_file():
    model = _gpt(width=64)
    q = ex.quantise(model)
    x = torch.randint(0, 30, (4, 16))
    with torch.no_grad():
        p, pq = model(x).log_softmax(-1), q(x).log_softmax(-1)
    kl = (p.exp() * (p - pq)).sum(-1).mean().item()
    assert kl < 1e-3                                         # the stated tolerance: 0.001 nats per position
    assert (p.exp() - pq.exp()).abs().max().item() < 0.02
    assert ex.file_size(q) < 0.5 * ex.file_size(model)
    assert not any(type(m) is torch.nn.Linear for m in q.blocks.modules())     # every block Linear is int8


def test_magnitude_pruning_zeroes_the_smallest_weights_of_each_block_layer_only():
    model = _gpt()
    pruned = ex.prune(model, 0.7)
    for (name, w), (_, w0) in zip(pruned.blocks.named_parameters(), model.blocks.named_parameters()):
        if w.dim() == 2:
            zero = (w == 0).float().mean().item()
            assert zero == pytest.approx(0.7, abs=0.01), name
            kept = w0.abs()[w != 0]
            assert kept.min() >= w0.abs()[w == 0].max()   # the kept weights are the largest
    assert torch.equal(pruned.wte.weight, model.wte.weight)
    assert ex.file_size(pruned) == ex.file_size(model)     # dense tensors: no smaller on disk


def test_speed_and_file_size_are_measured():
    model = _gpt()
    s = ex.speed(model, batch_size=2, seq_len=16, repeats=3)
    assert s["seconds"] > 0 and s["tokens_per_s"] == pytest.approx(32 / s["seconds"])
    assert ex.file_size(model, half=True) < ex.file_size(model)


def test_make_student_initialises_from_the_teachers_layers_or_at_random():
    teacher = _gpt(n_layer=6)
    init = ex.make_student(teacher, 3, init=True)
    fresh = ex.make_student(teacher, 3, init=False)
    assert init.cfg.n_layer == fresh.cfg.n_layer == 3 and init.cfg.n_embd == teacher.cfg.n_embd
    for i, j in enumerate([0, 2, 4]):
        assert torch.equal(init.blocks[i].attn.qkv.weight, teacher.blocks[j].attn.qkv.weight)
    assert not torch.equal(fresh.blocks[0].attn.qkv.weight, teacher.blocks[0].attn.qkv.weight)
