"""What does a smaller model buy on this machine? Parameters, file size, latency and tokens
per second at batch 1 and batch 32 for Chapter 11's teacher, its students (1, 2 and 3 of its
6 layers) and their int8 versions, with quality (TinyLang test nats/token) where the model
is shipped. Speed depends only on the shape, so the 2- and 3-layer students are timed with
the teacher's layers copied in.
Usage: python benchmarks/distill_speed.py [--quick]
"""
from __future__ import annotations

import sys

import torch

from textbook_lm import hub
from textbook_lm.experiments import distill as ex

REPEATS = 10 if "--quick" in sys.argv else 50


def main():
    teacher, vocab, _ = ex.load_teacher()
    student, _, _ = hub.load("tinylang-student")
    _, _, _, test = ex.tinylang_data()
    eos = vocab.index("<eos>")
    models = {"teacher, 6 layers": (teacher, True), "student, 3 layers": (ex.make_student(teacher, 3, True), False),
              "student, 2 layers": (ex.make_student(teacher, 2, True), False),
              "student, 1 layer (shipped)": (student.eval(), True)}
    models["teacher, 6 layers, int8"] = (ex.quantise(teacher), True)
    models["student, 1 layer, int8"] = (ex.quantise(student), True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; forward pass over 64 tokens per "
          f"sequence, median of {REPEATS}")
    print(f"{'model':>26} {'params':>10} {'MB fp32':>8} {'MB fp16':>8} {'ms @1':>7} {'tok/s @1':>9} {'ms @32':>7} "
          f"{'tok/s @32':>10} {'test nats':>10}")
    base = None
    for name, (m, scored) in models.items():
        m = m.cpu().eval()
        s1, s32 = ex.speed(m, 1, repeats=REPEATS, vocab_size=len(vocab)), ex.speed(m, 32, repeats=REPEATS,
                                                                                   vocab_size=len(vocab))
        base = base or s32["seconds"]
        fp16 = "" if "int8" in name else f"{ex.file_size(m, half=True) / 1e6:8.2f}"
        quality = f"{ex.evaluate_lm(m, test, eos):10.4f}" if scored else f"{'-':>10}"
        source = teacher if "teacher" in name else m if "int8" not in name else student
        print(f"{name:>26} {ex.count_params(source):>10,} {ex.file_size(m) / 1e6:8.2f} {fp16:>8} "
              f"{1000 * s1['seconds']:7.2f} {s1['tokens_per_s']:9,.0f} {1000 * s32['seconds']:7.1f} "
              f"{s32['tokens_per_s']:10,.0f} {quality}")


if __name__ == "__main__":
    main()
