"""pytorch/examples ``time_sequence_prediction`` (``train.py`` and ``generate_sine_wave.py``)
run through kompile: the ``Sequence`` module as written (two ``LSTMCell`` and a ``Linear``,
float64 via ``.double()``, ``forward(input, future=0)``), the sine data as the program makes
them and passes them (float64 torch tensors), ``nn.MSELoss()`` as the loss.

What it found: ``torch.optim.LBFGS`` (the program's optimizer) failed at the first step with
torch's ``step() missing 'closure'``; it is now refused in ``compile`` naming the reason.
NumPy float64 data (which kompile turns into float32, Keras's floatx) into the float64
module failed with a bare dtype error; it now says to pass tensors.
"""

from __future__ import annotations

import numpy as np
import pytest

import kompile as kp

torch = pytest.importorskip("torch")
nn = torch.nn


class Sequence(nn.Module):  # as in time_sequence_prediction/train.py
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)
        self.dummy_param = nn.Parameter(torch.empty(0))

    def forward(self, input, future=0):  # noqa: A002 (the program's name)
        outputs = []
        device = self.dummy_param.device
        h_t = torch.zeros(input.size(0), 51, dtype=torch.double).to(device)
        c_t = torch.zeros(input.size(0), 51, dtype=torch.double).to(device)
        h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double).to(device)
        c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double).to(device)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def sine_data(length=60):
    """generate_sine_wave.py (T=20, N=20; L=1000 there, shorter here to stay fast)."""
    np.random.seed(2)
    T, L, N = 20, length, 20
    x = np.empty((N, L), "int64")
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    return torch.from_numpy(np.sin(x / 1.0 / T).astype("float64"))


def test_lbfgs_is_refused_at_compile():
    seq = Sequence().double()
    with pytest.raises(ValueError, match=r"`optimizer`: torch.optim.LBFGS needs a closure"):
        kp.Model(seq).compile(torch.optim.LBFGS(seq.parameters(), lr=0.8), nn.MSELoss())
    with pytest.raises(ValueError, match="needs a closure"):
        kp.Model(seq).compile(torch.optim.LBFGS, "mse")


def test_time_sequence_prediction_trains_in_float64():
    torch.manual_seed(0)
    data = sine_data()
    input, target = data[3:, :-1], data[3:, 1:]  # noqa: A001
    test_input, test_target = data[:3, :-1], data[:3, 1:]
    seq = Sequence().double()
    model = kp.Model(seq).compile(torch.optim.Adam(seq.parameters(), lr=0.01), nn.MSELoss())
    hist = model.fit(input, target, batch_size=len(input), epochs=4, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    pred = model.predict(test_input, verbose=0)
    assert pred.dtype == np.float64 and pred.shape == tuple(test_target.shape)
    with torch.no_grad():  # the program's own evaluation, on the trained module
        seq.eval()
        future = 5
        out = seq(test_input, future=future)
        want = nn.MSELoss()(out[:, :-future], test_target).item()
    np.testing.assert_allclose(pred, out[:, :-future].numpy(), rtol=1e-10, atol=1e-12)
    # logs accumulate in float32, as in Keras
    assert model.evaluate(test_input, test_target, verbose=0) == pytest.approx(want, rel=1e-6)


def test_numpy_float64_into_a_double_module_says_what_to_do():
    seq = Sequence().double()
    data = sine_data().numpy()
    model = kp.Model(seq).compile(torch.optim.Adam(seq.parameters()), "mse")
    with pytest.raises(TypeError, match=r"computes in float64.*torch.from_numpy\(x\)"):
        model.fit(data[3:, :-1], data[3:, 1:], epochs=1, verbose=0)
