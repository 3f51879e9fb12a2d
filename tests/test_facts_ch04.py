"""Facts that chapter 4's prose and fact-check boxes rely on (Appendix C lists the boxes)."""
import torch
import torch.nn.functional as F

from textbook_lm import nnlm


def _lstm_probe(forget_bias: float | None) -> torch.Tensor:
    """Gradient norms of the last prediction w.r.t. 60 earlier inputs of an untrained LSTM."""
    torch.manual_seed(0)
    idx = torch.randint(0, 50, (1, 61))
    torch.manual_seed(1)
    m = nnlm.RecurrentLM(nnlm.RecurrentConfig(50, "lstm", emb_dim=32, hidden=64))
    if forget_bias is not None:
        with torch.no_grad():
            m.rnn.bias_hh_l0[64:128].fill_(forget_bias)      # PyTorch's gate order: input, forget, cell, output
    return nnlm.gradient_norms(m, idx)                     # index 0: 60 steps back, index -1: 1 step back


def test_lstm_gradients_survive_only_while_the_forget_gate_stays_open():
    """'LSTMs solve the vanishing gradient problem': only while the forget gates stay near 1."""
    open_gate = _lstm_probe(3.0)              # sigmoid(3 + small) ~ 0.95
    default = _lstm_probe(None)               # PyTorch's initialisation: forget gate ~ sigmoid(0) = 0.5
    closed = _lstm_probe(-3.0)                # sigmoid(-3) ~ 0.05
    assert open_gate[0] > 0.1 * open_gate[-1]             # 60 steps back: the same order of magnitude
    assert default[0] < 1e-6 * default[-1]                # half-open gates: vanished like a vanilla RNN
    assert closed[0] < 1e-12 * closed[-1]


def test_one_hot_product_picks_a_column_and_the_table_stores_it_as_a_row():
    """W e_i is column i of W; BigramNet's table (an nn.Embedding) holds W transposed: row i = W e_i."""
    torch.manual_seed(0)
    V = 7
    net = nnlm.BigramNet(V)
    with torch.no_grad():
        net.table.weight.normal_()
    W = net.table.weight.T                                  # (V next words, V previous words)
    for i in range(V):
        e_i = F.one_hot(torch.tensor(i), V).float()
        assert torch.equal(W @ e_i, W[:, i])                # a column of W ...
        assert torch.allclose(net(torch.tensor([[i]]))[0, 0], W[:, i])   # ... looked up as row i of the table
    assert not torch.allclose(W[0], W[:, 0])                # rows and columns differ: the distinction matters
