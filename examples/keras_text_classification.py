"""Text classification from scratch (IMDB sentiment), run with kompile on a torch module.

Source: keras-team/keras-io, examples/nlp/text_classification_from_scratch.py (fchollet).
Changed: the model is a torch module with the same layers (Embedding(max_features, 128),
Dropout(0.5), 2 x Conv1D(128, 7, "valid", relu, strides=3), global max pooling, Dense(128, relu),
Dropout(0.5), Dense(1, sigmoid)); the data are synthetic integer sequences (the output of the
example's TextVectorization step: word indices, 0 for padding) whose label depends on which
words occur, instead of the downloaded IMDB reviews; the ``tf.data`` datasets of batches are
``torch.utils.data.DataLoader``s (batch size 32); no end-to-end string model at the end.
Unchanged: max_features=20000, embedding_dim=128, sequence_length=500,
compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"]),
fit(train_ds, validation_data=val_ds, epochs=3), evaluate(test_ds).

    python examples/keras_text_classification.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import kompile as kp

max_features = 20000
embedding_dim = 128
sequence_length = 500


def vectorized_reviews(n: int, length: int, rng: np.random.Generator) -> TensorDataset:
    """Word-index sequences: 1 in 5 words of a positive review comes from words 2..101 (a
    negative one: 102..201), the others from the rest of the vocabulary; 0 pads the end."""
    labels = rng.integers(0, 2, n)
    x = rng.integers(202, max_features, (n, length))
    sentiment = rng.integers(2, 102, (n, length)) + 100 * (1 - labels[:, None])
    x = np.where(rng.random((n, length)) < 0.2, sentiment, x)
    n_words = rng.integers(length // 4, length + 1, n)   # review length; the rest is padding
    x[np.arange(length)[None, :] >= n_words[:, None]] = 0
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(labels))


class TextConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(max_features, embedding_dim)
        self.dropout1 = nn.Dropout(0.5)
        self.conv1 = nn.Conv1d(embedding_dim, 128, 7, stride=3)
        self.conv2 = nn.Conv1d(128, 128, 7, stride=3)
        self.dense = nn.Linear(128, 128)
        self.dropout2 = nn.Dropout(0.5)
        self.predictions = nn.Linear(128, 1)

    def forward(self, inputs):
        x = self.dropout1(self.embedding(inputs)).transpose(1, 2)   # (batch, channels, time)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = x.amax(dim=2)                                            # GlobalMaxPooling1D
        x = self.dropout2(torch.relu(self.dense(x)))
        return torch.sigmoid(self.predictions(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 epoch on 128 short sequences")
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    n_train, n_val, n_test, length = (128, 32, 32, 100) if args.quick else (
        2000, 500, 500, sequence_length)
    train_ds = DataLoader(vectorized_reviews(n_train, length, rng), batch_size=32, shuffle=True)
    val_ds = DataLoader(vectorized_reviews(n_val, length, rng), batch_size=32)
    test_ds = DataLoader(vectorized_reviews(n_test, length, rng), batch_size=32)

    model = kp.Model(TextConvNet())

    # Compile the model with binary crossentropy loss and an adam optimizer.
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

    epochs = 1 if args.quick else 3

    # Fit the model using the train and test datasets.
    model.fit(train_ds, validation_data=val_ds, epochs=epochs)

    loss, accuracy = model.evaluate(test_ds)
    print(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
    if not args.quick and accuracy < 0.8:
        raise SystemExit(f"test accuracy {accuracy:.3f} is below 0.8")


if __name__ == "__main__":
    main()
