"""pytorch/examples' MNIST: its ``Net`` as written, trained by kompile instead of a hand loop.

Source: pytorch/examples, mnist/main.py (Net, train, test, main).
Changed: the data are scikit-learn's digits upsampled from 8x8 to 28x28 (no torchvision
download), normalised with MNIST's (0.1307,), (0.3081,) as the original's transform does, in
``TensorDataset``s behind the same ``DataLoader``s; the ``train``/``test`` loops are replaced by
``compile``/``fit``/``evaluate``: the loss is the original's ``F.nll_loss`` (per sample), the
accuracy is kompile's; ``StepLR(step_size=1, gamma)`` becomes a ``LearningRateScheduler``
callback with the same schedule.
Unchanged: ``Net``, ``optim.Adadelta(model.parameters(), lr=args.lr)``, the argument defaults
(batch 64, test batch 1000, 14 epochs, lr 1.0, gamma 0.7, seed 1).

    python examples/pytorch_mnist.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import kompile as kp


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()  # noqa: UP008 (as written in the source)
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def nll_loss(target, output):
    """The original's loss, per sample (kompile reduces it)."""
    return F.nll_loss(output, target, reduction="none")


def digits_datasets(n_test: int = 297) -> tuple[TensorDataset, TensorDataset]:
    digits = load_digits()
    images = np.pad(np.kron(digits.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2))) / 16.0
    images = ((images - 0.1307) / 0.3081).astype(np.float32)[:, None]  # (n, 1, 28, 28)
    x, y = torch.from_numpy(images), torch.from_numpy(digits.target).long()
    return TensorDataset(x[:-n_test], y[:-n_test]), TensorDataset(x[-n_test:], y[-n_test:])


def main():
    parser = argparse.ArgumentParser(description='PyTorch MNIST Example')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N',
                        help='input batch size for training (default: 64)')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N',
                        help='input batch size for testing (default: 1000)')
    parser.add_argument('--epochs', type=int, default=14, metavar='N',
                        help='number of epochs to train (default: 14)')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR',
                        help='learning rate (default: 1.0)')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M',
                        help='Learning rate step gamma (default: 0.7)')
    parser.add_argument('--seed', type=int, default=1, metavar='S',
                        help='random seed (default: 1)')
    parser.add_argument('--quick', action='store_true', help='1 epoch on 256 images')
    args = parser.parse_args()

    torch.manual_seed(args.seed)

    dataset1, dataset2 = digits_datasets()
    if args.quick:
        dataset1 = TensorDataset(*dataset1[:256])
        dataset2 = TensorDataset(*dataset2[:64])
        args.epochs = 1
    train_loader = DataLoader(dataset1, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(dataset2, batch_size=args.test_batch_size)

    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    trainer = kp.Model(model)
    trainer.compile(optimizer, nll_loss, metrics=["accuracy"])
    scheduler = kp.callbacks.LearningRateScheduler(lambda epoch: args.lr * args.gamma ** epoch)
    trainer.fit(train_loader, epochs=args.epochs, validation_data=test_loader,
                callbacks=[scheduler], verbose=2)
    test_loss, accuracy = trainer.evaluate(test_loader, verbose=0)
    print(f'\nTest set: Average loss: {test_loss:.4f}, Accuracy: {100. * accuracy:.0f}%\n')
    if not args.quick and accuracy < 0.9:
        raise SystemExit(f"test accuracy {accuracy:.3f} is below 0.9")


if __name__ == '__main__':
    main()
